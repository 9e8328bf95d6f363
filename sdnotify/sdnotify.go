// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)): it tells the service manager when gatehouse is ready,
// when it reloads, when it stops, and that it is still alive (watchdog).
//
// Everything is a no-op when $NOTIFY_SOCKET is unset, so the same binary
// runs unchanged outside systemd, in tests and under Type=simple.
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Notifier sends state changes to the service manager's socket. The zero
// value and a nil *Notifier send nothing.
type Notifier struct {
	socket string // as in $NOTIFY_SOCKET; "" disables every message
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET. When the variable is unset
// the Notifier sends nothing.
func FromEnv() *Notifier {
	return New(os.Getenv("NOTIFY_SOCKET"))
}

// New returns a Notifier for the given socket: a file system path, or an
// abstract socket name starting with "@". An empty socket sends nothing.
func New(socket string) *Notifier {
	return &Notifier{socket: socket}
}

// Enabled reports whether messages go anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.socket != "" }

// Notify sends one message made of the given "KEY=value" lines. It returns
// nil without sending when the Notifier is disabled.
func (n *Notifier) Notify(lines ...string) error {
	if !n.Enabled() || len(lines) == 0 {
		return nil
	}
	for _, l := range lines {
		if !strings.Contains(l, "=") || strings.Contains(l, "\n") {
			return fmt.Errorf("sdnotify: %q is not one KEY=value line", l)
		}
	}
	addr, err := socketAddr(n.socket)
	if err != nil {
		return err
	}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer conn.Close()
	msg := strings.Join(lines, "\n") + "\n"
	if _, err := conn.Write([]byte(msg)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

// socketAddr turns $NOTIFY_SOCKET into an address. A leading "@" names a
// socket in the abstract namespace.
func socketAddr(socket string) (*net.UnixAddr, error) {
	switch {
	case strings.HasPrefix(socket, "/"):
		return &net.UnixAddr{Name: socket, Net: "unixgram"}, nil
	case strings.HasPrefix(socket, "@"):
		// Go maps a leading "@" to the abstract namespace itself.
		return &net.UnixAddr{Name: socket, Net: "unixgram"}, nil
	}
	return nil, fmt.Errorf("sdnotify: NOTIFY_SOCKET=%q is neither an absolute path nor an abstract socket (@name)", socket)
}

// Ready tells the manager that start-up (or a reload) has finished.
func (n *Notifier) Ready() error { return n.Notify("READY=1") }

// Reloading tells the manager that a reload has begun; it must be followed
// by Ready. The message carries CLOCK_MONOTONIC, as Type=notify-reload
// requires.
func (n *Notifier) Reloading() error {
	if !n.Enabled() {
		return nil
	}
	usec, err := monotonicUsec()
	if err != nil {
		return n.Notify("RELOADING=1")
	}
	return n.Notify("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatUint(usec, 10))
}

// Stopping tells the manager that the service is shutting down.
func (n *Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// Watchdog tells the manager that the service is still alive.
func (n *Notifier) Watchdog() error { return n.Notify("WATCHDOG=1") }

// Status sets the free-form status line shown by systemctl status.
func (n *Notifier) Status(s string) error {
	return n.Notify("STATUS=" + strings.ReplaceAll(s, "\n", " "))
}

// WatchdogInterval returns the watchdog timeout the manager expects
// (WatchdogSec=, passed as $WATCHDOG_USEC) and whether the watchdog is on
// for this process ($WATCHDOG_PID, when set, must be our pid).
func WatchdogInterval() (time.Duration, bool, error) {
	return watchdogInterval(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getpid())
}

func watchdogInterval(usecStr, pidStr string, pid int) (time.Duration, bool, error) {
	if usecStr == "" {
		return 0, false, nil
	}
	usec, err := strconv.ParseUint(usecStr, 10, 64)
	if err != nil || usec == 0 || usec > uint64(1<<62)/1000 {
		return 0, false, fmt.Errorf("sdnotify: WATCHDOG_USEC=%q is not a positive number of microseconds", usecStr)
	}
	if pidStr != "" {
		p, err := strconv.Atoi(pidStr)
		if err != nil {
			return 0, false, fmt.Errorf("sdnotify: WATCHDOG_PID=%q is not a process id", pidStr)
		}
		if p != pid {
			return 0, false, nil // the watchdog is meant for another process
		}
	}
	return time.Duration(usec) * time.Microsecond, true, nil
}

// RunWatchdog sends WATCHDOG=1 every interval until ctx ends. Callers pass
// half of WatchdogInterval, as sd_watchdog_enabled(3) recommends. It
// returns at once when the Notifier is disabled or interval is not
// positive.
func (n *Notifier) RunWatchdog(ctx context.Context, interval time.Duration) {
	if !n.Enabled() || interval <= 0 {
		return
	}
	_ = n.Watchdog()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = n.Watchdog()
		}
	}
}

// ErrNoMonotonicClock is returned where CLOCK_MONOTONIC cannot be read.
var ErrNoMonotonicClock = errors.New("sdnotify: no CLOCK_MONOTONIC on this platform")
