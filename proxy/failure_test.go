package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestBackendDown: a route whose backend does not answer gets a 502 that
// names the route and not its address; the other routes go on working.
func TestBackendDown(t *testing.T) {
	up := newEchoBackend(t, "up")
	down := closedPort(t)
	_, port, _ := net.SplitHostPort(down)
	d := startDoor(t, parseConfig(t, `
domain = "example.com"
route "up" {
  backend = "`+up.url+`"
  cloudflare {
    host   = "up"
    access = "app"
  }
}
route "photos-api" {
  backend = "http://`+down+`"
  cloudflare {
    host   = "down"
    access = "app"
  }
}
`))
	for i := 0; i < 3; i++ {
		resp, body := d.get(t, "down.example.com", "/api/x", nil)
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("status %d, want 502: %q", resp.StatusCode, body)
		}
		if !bytes.Contains(body, []byte("<b>photos-api</b>")) {
			t.Errorf("502 page does not name the route: %q", body)
		}
		for k, vs := range resp.Header {
			for _, v := range append([]string{k}, vs...) {
				if strings.Contains(v, "127.0.0.1") || strings.Contains(v, port) {
					t.Errorf("502 header %s: %q gives away the backend address", k, vs)
				}
			}
		}
		if bytes.Contains(body, []byte("127.0.0.1")) || bytes.Contains(body, []byte(port)) {
			t.Errorf("502 page gives away the backend address %s: %q", down, body)
		}

		resp, body = d.get(t, "up.example.com", "/", nil)
		if resp.StatusCode != http.StatusOK || decodeSeen(t, body).Route != "up" {
			t.Fatalf("the route that is up: status %d %q", resp.StatusCode, body)
		}
	}
	// The log says which backend failed, for the admin.
	if l := d.log.String(); !strings.Contains(l, "backend error") || !strings.Contains(l, "photos-api") {
		t.Errorf("no backend error logged for the route:\n%s", l)
	}
}

// TestClientDisconnectCancelsUpstream: when the client goes away, the
// backend's request context is cancelled, both while the backend thinks
// and while it streams; the abandoned backend connection, even one taken
// from the keep-alive pool, is not used again.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	started := make(chan string, 1)
	cancelled := make(chan string, 1)
	// Closed when the test ends, so a backend left waiting by a failure
	// lets its server shut down instead of hanging the test.
	testDone := make(chan struct{})
	url, ln := newCountingBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/warm", "/after":
			io.WriteString(w, "hello")
			return
		case "/slow":
			started <- r.URL.Path
			select {
			case <-r.Context().Done():
			case <-testDone:
				return
			}
		case "/stream":
			started <- r.URL.Path
			chunk := bytes.Repeat([]byte("x"), 32<<10)
			rc := http.NewResponseController(w)
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					break
				}
				_ = rc.Flush()
			}
			<-r.Context().Done()
		}
		cancelled <- r.URL.Path
	}))
	t.Cleanup(func() { close(testDone) })
	d := startDoor(t, parseConfig(t, appConfig(url, "")))
	// A connection in the pool first, so the slow request reuses it.
	if resp, body := d.get(t, "app.example.com", "/warm", nil); resp.StatusCode != 200 || string(body) != "hello" {
		t.Fatalf("warm-up: %d %q", resp.StatusCode, body)
	}

	// The backend has not answered yet.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://app.example.com/slow", nil)
		resp, err := d.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, started, "the backend to get the request")
	cancel()
	if err := waitFor(t, errc, "the client to give up"); !errors.Is(err, context.Canceled) {
		t.Errorf("client: %v, want context.Canceled", err)
	}
	if p := waitFor(t, cancelled, "the backend's request context to end"); p != "/slow" {
		t.Errorf("cancelled %s", p)
	}
	// The next request gets a fresh connection and a proper answer.
	if resp, body := d.get(t, "app.example.com", "/after", nil); resp.StatusCode != 200 || string(body) != "hello" {
		t.Fatalf("after the client left: %d %q", resp.StatusCode, body)
	}
	if n := ln.accepts.Load(); n != 2 {
		t.Errorf("%d backend connections, want 2: the abandoned one must not be reused", n)
	}

	// The backend is streaming the response.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://app.example.com/stream", nil)
	resp, err := d.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, started, "the backend to start streaming")
	if _, err := io.ReadFull(resp.Body, make([]byte, 256<<10)); err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	cancel()
	resp.Body.Close()
	if p := waitFor(t, cancelled, "the streaming backend's request context to end"); p != "/stream" {
		t.Errorf("cancelled %s", p)
	}
}
