package forward

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// spliceMin is the smallest body sent by splice(2): below it the copy
// loop's two syscalls per 64 KiB cost less than setting up the watch.
const spliceMin = 1 << 20

// spliceBody sends the rest of a sized body from the backend's socket to
// the client's without it passing through gatehouse's memory: net/http
// hands a plain connection's ReadFrom the backend socket, and the kernel
// moves the pages (splice). It reports whether it took the body; when it
// did not, nothing was read or written.
//
// Inside one ReadFrom call no write returns to the writer, so the stall
// deadline cannot be pushed forward write by write as the copy loop does.
// Instead a watch looks at the client socket's TCP_INFO every quarter of
// the stall timeout and pushes the deadline on unless the client is the
// one holding things up: bytes were acknowledged since the last look, or
// nothing waits to be sent to it (the backend is slow, which the copy loop
// does not count against the client either). A client that stops reading
// is cut within 1¼ stall timeouts of its last progress.
func (d *direct) spliceBody(w http.ResponseWriter, r *http.Request, c *directConn, res *http.Response) (taken bool, readErr, writeErr error) {
	if res.ContentLength < spliceMin || len(res.TransferEncoding) > 0 || r.Method == http.MethodHead {
		return false, nil, nil
	}
	rf, ok := w.(io.ReaderFrom)
	sk, ok2 := w.(StallKeeper)
	backend, ok3 := c.conn.(*net.TCPConn)
	client, ok4 := r.Context().Value(clientConnKey{}).(*net.TCPConn)
	if !ok || !ok2 || !ok3 || !ok4 {
		return false, nil, nil
	}
	if stall := sk.StallTimeout(); stall > 0 {
		// Without TCP_INFO the stall deadline could not be kept: the
		// copy loop sends the body.
		stop, ok := watchClient(client, stall/4, sk.Progressed)
		if !ok {
			return false, nil, nil
		}
		defer stop()
	}

	// What the head's reads already buffered goes first, then the rest
	// straight from the socket.
	left := res.ContentLength
	if n := min(int64(c.br.Buffered()), left); n > 0 {
		b, _ := c.br.Peek(int(n))
		if _, writeErr = w.Write(b); writeErr != nil {
			return true, nil, writeErr
		}
		_, _ = c.br.Discard(int(n))
		left -= n
	}
	splicedBodies.Add(1)
	n, err := rf.ReadFrom(&io.LimitedReader{R: backend, N: left})
	switch {
	case err == nil && n < left:
		readErr = io.ErrUnexpectedEOF // the backend closed mid-body
	case err != nil && sideOfClient(r, err):
		writeErr = err
	case err != nil:
		readErr = err
	}
	return true, readErr, writeErr
}

// splicedBodies counts the bodies spliceBody took, for tests.
var splicedBodies atomic.Int64

// clientConnKey holds the client's connection in a request's context.
type clientConnKey struct{}

// WithClientConn is an http.Server's ConnContext that lets the direct
// path watch the client's socket while it splices a body to it.
func WithClientConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, clientConnKey{}, c)
}

// sideOfClient tells whether a failed splice failed at the client: it left
// (its context ended), stopped reading (the stall deadline on writes) or
// broke the connection. A splice reports one error for both sockets; a
// backend that resets the connection mid-body counts as the client's
// failure, which changes only the log line: the client sees a cut body
// either way.
func sideOfClient(r *http.Request, err error) bool {
	return r.Context().Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// watchClient calls moved every interval in which the client made
// progress or had nothing waiting for it; the returned stop waits for a
// running call, so nothing touches the client's connection once the body
// is sent (net/http reuses it for the next request). ok is false when the
// socket's TCP_INFO cannot be read.
func watchClient(client *net.TCPConn, interval time.Duration, moved func()) (stop func(), ok bool) {
	raw, err := client.SyscallConn()
	if err != nil {
		return nil, false
	}
	info := func() (*unix.TCPInfo, bool) {
		var ti *unix.TCPInfo
		var gerr error
		if err := raw.Control(func(fd uintptr) { ti, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil || gerr != nil {
			return nil, false
		}
		return ti, true
	}
	first, ok := info()
	if !ok {
		return nil, false
	}
	var mu sync.Mutex
	done := false
	acked := first.Bytes_acked
	var t *time.Timer
	t = time.AfterFunc(interval, func() {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return
		}
		if ti, ok := info(); ok && (ti.Bytes_acked != acked || ti.Notsent_bytes == 0 && ti.Unacked == 0) {
			acked = ti.Bytes_acked
			moved()
		}
		t.Reset(interval)
	})
	return func() {
		mu.Lock()
		done = true
		t.Stop()
		mu.Unlock()
	}, true
}
