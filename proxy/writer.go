package proxy

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"gatehouse/auth"
)

// loggingWriter records status and size for the access log, and keeps a
// no-progress deadline on writes: a client that stops reading is cut after
// the stall timeout, while a long download that keeps moving never is.
type loggingWriter struct {
	http.ResponseWriter
	door     string
	status   int
	bytes    int64
	stall    time.Duration
	deadline time.Time
	rc       *http.ResponseController
	// hijacked: the connection is no longer the server's (WebSocket), so
	// no deadline may be set on it.
	hijacked bool
	// closeConn: the connection closes after this answer, whatever the
	// handler set in the header.
	closeConn bool
	// limit is why a 429 was sent ("rate", "banned"), for Answer.
	limit string
	// forwarded: the request went on to the backend, for Answer.
	forwarded bool
}

func (w *loggingWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		if w.closeConn {
			w.Header()["Connection"] = []string{"close"}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *loggingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.extend()
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom sends a body from src, letting net/http hand a plain client
// connection the source directly (splice(2) on Linux, forward's direct
// path); other writers get it write by write.
func (w *loggingWriter) ReadFrom(src io.Reader) (int64, error) {
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(writerOnly{w}, src)
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.extend()
	n, err := rf.ReadFrom(src)
	w.bytes += n
	return n, err
}

// writerOnly hides ReadFrom, so io.Copy writes through Write.
type writerOnly struct{ io.Writer }

// StallTimeout and Progressed make the writer a forward.StallKeeper: a
// spliced body's progress, seen by forward on the backend socket, pushes
// the write deadline on as writes do. Progressed runs on forward's watch
// goroutine, so it touches no field the handler writes.
func (w *loggingWriter) StallTimeout() time.Duration { return w.stall }

func (w *loggingWriter) Progressed() {
	_ = http.NewResponseController(w.ResponseWriter).SetWriteDeadline(time.Now().Add(w.stall))
}

// extend pushes the write deadline forward, at most 64 times per stall
// period so the hot path does not reset a timer on every write, yet every
// write starts with nearly the whole stall period ahead of it: a write
// to a slow but steady client can block for long, because the kernel
// wakes a writer only once a third of the send queue (megabytes) has
// drained.
func (w *loggingWriter) extend() {
	if w.stall <= 0 {
		return
	}
	now := time.Now()
	if w.deadline.Sub(now) > w.stall-w.stall/64 {
		return
	}
	if w.rc == nil {
		w.rc = http.NewResponseController(w.ResponseWriter)
	}
	w.deadline = now.Add(w.stall)
	_ = w.rc.SetWriteDeadline(w.deadline)
}

// finish gives the server's last write of the response one more stall
// period. net/http writes what it still buffers (a short page, the headers
// of a body-less answer, the chunked terminator) after the handler returns;
// without a deadline, a client that stops reading holds the connection
// forever. net/http clears the write deadline before the next request.
// It is extend's rule: a short answer whose one write has just set the
// deadline is not given it again (each setting resets a timer).
func (w *loggingWriter) finish() {
	if w.hijacked {
		return
	}
	w.extend()
}

func (w *loggingWriter) Flush() {
	w.extend()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands over the connection for WebSockets; net/http clears its
// deadlines on hijack.
func (w *loggingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	w.deadline = time.Time{}
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	w.hijacked = err == nil
	return c, brw, err
}

func (w *loggingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// code is the status sent, 499 when the client left before any.
func (w *loggingWriter) code() int {
	if w.status == 0 {
		return 499
	}
	return w.status
}

// logAccess writes the access log line of a visit.
func (g *Gateway) logAccess(lw *loggingWriter, r *http.Request, route string, fwd forwarded, id auth.Identity, start time.Time) {
	ctx := r.Context()
	if !g.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	// LogAttrs with typed attributes: no boxing of every value into an
	// interface, which the access log would otherwise pay per request.
	attrs := [11]slog.Attr{
		slog.String("door", lw.door), slog.String("route", route), slog.String("host", r.Host),
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", lw.code()),
		slog.Int64("bytes", lw.bytes), slog.Duration("duration", time.Since(start).Round(time.Microsecond)),
		slog.String("client", fwd.client.String()),
	}
	n := 9
	if who := id.String(); who != "" {
		attrs[n] = slog.String("identity", who)
		n++
	}
	g.log.LogAttrs(ctx, slog.LevelInfo, "request", attrs[:n]...)
}
