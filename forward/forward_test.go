package forward

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// TestServeReportsWhoFailed: a failed exchange writes nothing and says
// whether the client's body or the backend failed.
func TestServeReportsWhoFailed(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	u, _ := url.Parse(backend.URL)
	c := NewClient(Options{})
	defer c.CloseIdle()
	b := c.Backend(Route{URL: u, ResponseTimeout: time.Minute, IdleTimeout: time.Minute})
	broken := errors.New("client's upload broke off")

	cases := []struct {
		name     string
		body     io.Reader
		wantBody error // nil: no body failure
		wantErr  bool
	}{
		{name: "fine", body: strings.NewReader("upload")},
		{name: "client's body fails", body: io.MultiReader(strings.NewReader("part"), iotest.ErrReader(broken)), wantBody: broken, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "http://app.example.com/up", tc.body)
			r.ContentLength = -1
			rec := httptest.NewRecorder()
			err := b.Serve(rec, r)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Serve = %v, want an error: %v", err, tc.wantErr)
			}
			if err == nil {
				if rec.Code != 200 || rec.Body.String() != "ok" {
					t.Errorf("answer %d %q", rec.Code, rec.Body)
				}
				return
			}
			if !errors.Is(err.Body, tc.wantBody) {
				t.Errorf("Body = %v, want %v (Err %v)", err.Body, tc.wantBody, err.Err)
			}
			if rec.Body.Len() != 0 || len(rec.Header()) != 0 {
				t.Errorf("a failed exchange wrote %v %q", rec.Header(), rec.Body)
			}
		})
	}

	t.Run("backend absent", func(t *testing.T) {
		down := httptest.NewServer(http.NotFoundHandler())
		du, _ := url.Parse(down.URL)
		down.Close()
		for _, rpOnly := range []bool{false, true} {
			c := NewClient(Options{ReverseProxyOnly: rpOnly})
			r := httptest.NewRequest("GET", "http://app.example.com/", nil)
			rec := httptest.NewRecorder()
			rec.Header().Set("Set-Cookie", "renewed=1")
			err := c.Backend(Route{URL: du}).Serve(rec, r)
			if err == nil || err.Body != nil || err.Timeout() {
				t.Errorf("reverse-proxy-only=%v: Serve = %v, want a backend failure that is no timeout", rpOnly, err)
			}
			if got := rec.Header().Get("Set-Cookie"); got != "renewed=1" || rec.Body.Len() != 0 {
				t.Errorf("reverse-proxy-only=%v: the caller's header after a failure: %v, body %q", rpOnly, rec.Header(), rec.Body)
			}
		}
	})
}

// TestErrorTimeout: a backend that took the request and kept silent is a
// timeout; one that could not be reached is not, even when its dial timed
// out.
func TestErrorTimeout(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{errBackendTimeout, true},
		{errors.Join(errors.New("round trip"), errBackendTimeout), true},
		{timeout{}, true},
		{&netOpDial, false},
		{io.ErrUnexpectedEOF, false},
	} {
		if got := (&Error{Err: c.err}).Timeout(); got != c.want {
			t.Errorf("Timeout of %v = %v, want %v", c.err, got, c.want)
		}
	}
}

type timeout struct{}

func (timeout) Error() string   { return "i/o timeout" }
func (timeout) Timeout() bool   { return true }
func (timeout) Temporary() bool { return true }

var netOpDial = net.OpError{Op: "dial", Net: "tcp", Err: timeout{}}
