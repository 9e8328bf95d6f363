package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"gatehouse/forward"
)

// timeoutErr is a network timeout, as the Transport reports its
// ResponseHeaderTimeout.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "timeout awaiting response headers" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestForwardFailed: a failed exchange is answered by whose fault it is —
// the client's body is never the backend's fault, a client that left gets
// nothing, and a silent backend is told from an absent one.
func TestForwardFailed(t *testing.T) {
	g := stageGateway(t)
	route := g.Table().Routes()[0]
	tooBig := &http.MaxBytesError{Limit: 1000}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	cases := []struct {
		name   string
		err    *forward.Error
		gone   bool // the client left
		status int
		body   string
	}{
		{name: "body over max_body", err: &forward.Error{Err: fmt.Errorf("copying: %w", tooBig)}, status: 413, body: "larger than the 1 kB"},
		{name: "body over max_body, seen reading it", err: &forward.Error{Err: io.ErrUnexpectedEOF, Body: tooBig}, status: 413, body: "Upload too large"},
		{name: "upload stalled", err: &forward.Error{Err: context.Canceled, Body: os.ErrDeadlineExceeded}, gone: true, status: 408, body: "Upload stalled"},
		{name: "client left", err: &forward.Error{Err: context.Canceled}, gone: true, status: 499},
		{name: "malformed body", err: &forward.Error{Err: io.ErrUnexpectedEOF, Body: errors.New("invalid byte in chunk length")}, status: 400, body: "Bad request body"},
		{name: "backend silent", err: &forward.Error{Err: timeoutErr{}}, status: 504, body: "did not answer within 2m0s"},
		{name: "backend absent", err: &forward.Error{Err: refused}, status: 502, body: "is not answering"},
		{name: "dial timeout is absence", err: &forward.Error{Err: &net.OpError{Op: "dial", Err: timeoutErr{}}}, status: 502},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if c.gone {
				cancel()
			}
			r := httptest.NewRequest("POST", "http://app.example.com/", nil).WithContext(ctx)
			rec := httptest.NewRecorder()
			g.forwardFailed(rec, r, route, "cloudflare", c.err)
			if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.body) {
				t.Errorf("answer %d %q, want %d with %q", rec.Code, rec.Body, c.status, c.body)
			}
		})
	}
}
