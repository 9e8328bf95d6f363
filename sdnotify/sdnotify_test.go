package sdnotify

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen opens a real unixgram socket, as systemd's manager does, and
// returns its name and a function that reads the next message.
func listen(t *testing.T, name string) (string, func() string) {
	t.Helper()
	if name == "" {
		name = filepath.Join(t.TempDir(), "notify.sock")
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	next := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, _, err := conn.ReadFromUnix(buf)
		if err != nil {
			t.Fatalf("no notification arrived: %v", err)
		}
		return string(buf[:n])
	}
	return name, next
}

func TestStatesReachTheSocket(t *testing.T) {
	sock, next := listen(t, "")
	n := New(sock)
	if !n.Enabled() {
		t.Fatal("a notifier with a socket is disabled")
	}
	for _, c := range []struct {
		send func() error
		want string
	}{
		{n.Ready, "READY=1\n"},
		{n.Stopping, "STOPPING=1\n"},
		{n.Watchdog, "WATCHDOG=1\n"},
		{func() error { return n.Status("serving 15 routes\nreally") }, "STATUS=serving 15 routes really\n"},
	} {
		if err := c.send(); err != nil {
			t.Fatal(err)
		}
		if got := next(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

func TestReloadingCarriesMonotonicTime(t *testing.T) {
	sock, next := listen(t, "")
	n := New(sock)
	before, err := monotonicUsec()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Reloading(); err != nil {
		t.Fatal(err)
	}
	after, _ := monotonicUsec()
	msg := next()
	lines := strings.Split(strings.TrimSuffix(msg, "\n"), "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("reloading message %q, want RELOADING=1 and MONOTONIC_USEC=…", msg)
	}
	usec, err := strconv.ParseUint(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if usec < before || usec > after {
		t.Errorf("MONOTONIC_USEC=%d is not between %d and %d", usec, before, after)
	}
	// CLOCK_MONOTONIC, not the wall clock: far below the Unix time in µs.
	if wall := uint64(time.Now().UnixMicro()); usec >= wall/2 {
		t.Errorf("MONOTONIC_USEC=%d looks like wall-clock time (%d)", usec, wall)
	}
}

func TestAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@gatehouse-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	sock, next := listen(t, name)
	if err := New(sock).Ready(); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "READY=1\n" {
		t.Errorf("got %q", got)
	}
}

func TestFromEnv(t *testing.T) {
	sock, next := listen(t, "")
	t.Setenv("NOTIFY_SOCKET", sock)
	if err := FromEnv().Ready(); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "READY=1\n" {
		t.Errorf("got %q", got)
	}
}

func TestNoSocketIsANoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	for _, n := range []*Notifier{nil, {}, New(""), FromEnv()} {
		if n.Enabled() {
			t.Errorf("%#v is enabled", n)
		}
		for _, f := range []func() error{n.Ready, n.Reloading, n.Stopping, n.Watchdog} {
			if err := f(); err != nil {
				t.Errorf("disabled notifier: %v", err)
			}
		}
		done := make(chan struct{})
		go func() { n.RunWatchdog(context.Background(), time.Millisecond); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("RunWatchdog without a socket did not return")
		}
	}
}

func TestErrors(t *testing.T) {
	if err := New("relative.sock").Ready(); err == nil || !strings.Contains(err.Error(), "neither an absolute path") {
		t.Errorf("relative socket: %v", err)
	}
	// Nobody listening: the error is reported, not swallowed.
	if err := New(filepath.Join(t.TempDir(), "gone.sock")).Ready(); err == nil {
		t.Error("sending to a missing socket succeeded")
	}
	if err := New("/x").Notify("READY"); err == nil {
		t.Error("a line without = was sent")
	}
	if err := New("/x").Notify("READY=1\nX=2"); err == nil {
		t.Error("a line with a newline was sent")
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, c := range []struct {
		usec, pid string
		want      time.Duration
		on, err   bool
	}{
		{"", "", 0, false, false},
		{"30000000", "", 30 * time.Second, true, false},
		{"30000000", "4242", 30 * time.Second, true, false},
		{"30000000", "1", 0, false, false}, // someone else's watchdog
		{"0", "", 0, false, true},
		{"-5", "", 0, false, true},
		{"soon", "", 0, false, true},
		{"30000000", "me", 0, false, true},
	} {
		d, on, err := watchdogInterval(c.usec, c.pid, 4242)
		if d != c.want || on != c.on || (err != nil) != c.err {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: got %v %v %v, want %v %v err=%v",
				c.usec, c.pid, d, on, err, c.want, c.on, c.err)
		}
	}
	t.Setenv("WATCHDOG_USEC", "2000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	if d, on, err := WatchdogInterval(); d != 2*time.Second || !on || err != nil {
		t.Errorf("from the environment: %v %v %v", d, on, err)
	}
}

func TestRunWatchdogPingsUntilCancelled(t *testing.T) {
	sock, next := listen(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { New(sock).RunWatchdog(ctx, 20*time.Millisecond); close(done) }()
	for i := 0; i < 3; i++ {
		if got := next(); got != "WATCHDOG=1\n" {
			t.Fatalf("ping %d: %q", i, got)
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunWatchdog did not stop")
	}
}
