package proxy_test

// Answers that tell the truth about whose fault a failure is, and a
// backend side that cannot lie: ambiguous paths refused, gatehouse's own
// cookies out of a backend's reach, silent backends timed out, a broken
// client body not blamed on the backend, a smuggling-shaped request's
// connection closed.

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"gatehouse/metrics"
	"gatehouse/proxy"
	"gatehouse/ratelimit"
)

// TestAmbiguousPathRefused: a path with a segment that begins with ";" or
// is "." or ".." followed by ";" means one thing to gatehouse and another
// to servlet containers and WebDAV servers. It gets a 400 that says why,
// the same on every host, and never reaches a backend — neither as the
// spelling the client sent nor rewritten into another resource.
func TestAmbiguousPathRefused(t *testing.T) {
	s := startShipped(t)
	for _, tc := range []struct{ method, host, target string }{
		// Past vaultwarden's closed /admin (an empty segment to a
		// servlet-style router).
		{"GET", "passwords.example.com", "/;/admin"},
		{"GET", "passwords.example.com", "/;x/admin"},
		{"GET", "passwords.example.com", "/;jsessionid=1/admin/users"},
		{"GET", "passwords.example.com", "/api/..;/admin"},
		// A legal Nextcloud file name, which a rewrite turned into its
		// parent folder.
		{"DELETE", "files.example.com", "/remote.php/dav/files/alice/Docs/Sub/..;tmp"},
		{"MOVE", "files.example.com", "/remote.php/dav/files/alice/Docs/.;x/y"},
		{"GET", "auth.example.com", "/realms/..;/admin/"},
		{"GET", "auth.example.com", "/realms/home/%3b/x"},
	} {
		before := s.totalHits()
		req := tc.method + " " + tc.target + " HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
		raw := s.door.raw(t, strings.Replace(req, "%s", tc.host, 1))
		resp, body := parseRaw(t, raw)
		if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("Ambiguous path")) {
			t.Errorf("%s %s %s: %d, want 400 \"Ambiguous path\": %q", tc.method, tc.host, tc.target, resp.StatusCode, body)
		}
		unknown := s.door.raw(t, strings.Replace(req, "%s", unknownHost, 1))
		if !bytes.Equal(withoutDate(raw), withoutDate(unknown)) {
			t.Errorf("%s %s: answer differs from an unknown host's\n got: %q\nwant: %q", tc.method, tc.target, raw, unknown)
		}
		if s.totalHits() != before {
			t.Errorf("%s %s %s reached a backend", tc.method, tc.host, tc.target)
		}
	}
	// A ";" inside a name is the name's own: it passes, unchanged.
	nc := s.backends["nextcloud"]
	req, _ := http.NewRequest("PROPFIND", "http://files.example.com/remote.php/dav/files/alice/a;b/c..;d", nil)
	resp, body := s.door.do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PROPFIND of a name with ';': %d %q", resp.StatusCode, body)
	}
	if got := decodeSeen(t, body).Path; got != "/remote.php/dav/files/alice/a;b/c..;d" {
		t.Errorf("backend got %q", got)
	}
	if nc.hits.Load() != 1 {
		t.Errorf("nextcloud hits = %d, want 1", nc.hits.Load())
	}
}

// TestBackendCannotSetGatehouseCookies: a backend's Set-Cookie for one of
// gatehouse's cookie names (in any case, with a Domain, nameless) never
// reaches the client, on the direct path (GET) and the ReverseProxy path
// (POST); the backend's own cookies pass, in order.
func TestBackendCannotSetGatehouseCookies(t *testing.T) {
	evil := []string{
		"__Secure-gatehouse=stolen; Domain=example.com; Path=/; Secure; HttpOnly",
		"__Secure-gatehouse-1=more; Domain=example.com; Secure",
		"__Host-gatehouse=x; Path=/; Secure",
		"__Host-gatehouse-flow-abcdef=x; Path=/; Secure",
		"__secure-GATEHOUSE=x; Domain=example.com; Secure",
		" __Secure-gatehouse =x; Domain=example.com; Secure",
		"__Secure-gatehouse; Domain=example.com; Secure",
		"__Secure-gatehouse=; Max-Age=0; Domain=example.com", // clearing is setting too
	}
	own := []string{"app=1; Path=/", "gatehouse=app-cookie; Path=/", "__Secure-gatehousekeeper=x; Secure"}
	be := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		// Interleaved, so that the order of the kept ones is checked too.
		for i, c := range evil {
			w.Header().Add("Set-Cookie", c)
			if i < len(own) {
				w.Header().Add("Set-Cookie", own[i])
			}
		}
		_, _ = io.WriteString(w, "ok")
	})
	srv := startBackend(t, be)
	d := startDoor(t, parseConfig(t, appConfig(srv, "")))
	for _, method := range []string{"GET", "POST"} {
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader("x=1")
		}
		req, _ := http.NewRequest(method, "http://app.example.com/", body)
		resp, _ := d.do(t, req)
		if got := resp.Header["Set-Cookie"]; strings.Join(got, "\n") != strings.Join(own, "\n") {
			t.Errorf("%s: client got Set-Cookie %q, want only the backend's own %q", method, got, own)
		}
	}
	if n := strings.Count(d.log.String(), "backend tried to set gatehouse's own cookie"); n != 2 {
		t.Errorf("%d warnings about the cookies, want 2 (one per answer):\n%s", n, d.log)
	}
}

// startBackend serves h on loopback and returns its URL.
func startBackend(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// silentBackend accepts connections, reads what comes and never answers,
// except on /stream, where it sends the headers of an event stream at once
// and the first event only when told.
type silentBackend struct {
	url      string
	requests atomic.Int64
	sendNow  chan struct{}
}

func newSilentBackend(t *testing.T) *silentBackend {
	t.Helper()
	b := &silentBackend{sendNow: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				go func() { <-done; c.Close() }()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				b.requests.Add(1)
				_, _ = io.Copy(io.Discard, req.Body)
				if req.URL.Path == "/stream" {
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
					select {
					case <-b.sendNow:
					case <-done:
						return
					}
					_, _ = io.WriteString(c, "d\r\ndata: hello\n\n\r\n0\r\n\r\n")
				}
				_, _ = io.Copy(io.Discard, c) // hold the connection, answer nothing
			}()
		}
	}()
	b.url = "http://" + ln.Addr().String()
	return b
}

// TestSilentBackendTimesOut: a backend that takes the request and never
// answers gets the client a 504 after the route's response_timeout, on
// both forwarding paths, and the client's concurrency slot is free again
// (a second request is not refused with 429). A stream that has sent its
// headers is not cut by the timeout, however long its next event takes.
func TestSilentBackendTimesOut(t *testing.T) {
	be := newSilentBackend(t)
	cfg := parseConfig(t, `
domain = "example.com"
route "app" {
  backend          = "`+be.url+`"
  response_timeout = "1s"
  limit {
    concurrent = 1
  }
  cloudflare {
    host   = "app"
    access = "app"
  }
}
`)
	mt := metrics.New(nil)
	d := startDoorWith(t, cfg, proxy.Options{Limits: ratelimit.NewRegistry(1000), Metrics: mt})
	for i, method := range []string{"GET", "POST", "GET"} {
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader("upload")
		}
		req, _ := http.NewRequest(method, "http://app.example.com/slow", body)
		resp, page := d.do(t, req)
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("request %d (%s): %d, want 504: %q", i, method, resp.StatusCode, page)
		}
		if !bytes.Contains(page, []byte("<b>app</b>")) || !bytes.Contains(page, []byte("response_timeout")) {
			t.Errorf("504 page does not name the route and the setting: %q", page)
		}
	}
	if got := testutil.ToFloat64(mt.UpstreamErrors.WithLabelValues("app")); got != 3 {
		t.Errorf("upstream errors = %v, want 3", got)
	}

	// The stream's headers came at once; its first event comes after
	// more than the response timeout (the backend is told to send it
	// only once the client has waited past it).
	req, _ := http.NewRequest("GET", "http://app.example.com/stream", nil)
	resp, err := d.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	time.Sleep(1500 * time.Millisecond) // past response_timeout: the scenario, not an assertion on time
	close(be.sendNow)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: hello\n" {
		t.Fatalf("stream cut after its headers: %q, %v", line, err)
	}
}

// TestMalformedBodyIsClientsFault: a request body with broken chunk
// framing gets a 400, is not counted or logged as a backend error, and
// the backend's 502 counter stays at zero.
func TestMalformedBodyIsClientsFault(t *testing.T) {
	be := newEchoBackend(t, "app")
	mt := metrics.New(nil)
	d := startDoorWith(t, parseConfig(t, appConfig(be.url, "")), proxy.Options{Metrics: mt})
	raw := d.raw(t, "POST /upload HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"5\r\nhello\r\nzz\r\nbroken\r\n")
	resp, body := parseRaw(t, raw)
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("Bad request body")) {
		t.Errorf("broken chunked body: %d %q, want 400 \"Bad request body\"", resp.StatusCode, body)
	}
	if got := testutil.ToFloat64(mt.UpstreamErrors.WithLabelValues("app")); got != 0 {
		t.Errorf("upstream errors = %v, want 0", got)
	}
	if strings.Contains(d.log.String(), "backend error") {
		t.Errorf("a client's broken body logged as a backend error:\n%s", d.log)
	}
}

// TestContentLengthWithTransferEncodingCloses: a request with both framing
// headers is answered and its connection closed, so whatever follows on it
// (a smuggled second request) is never read as a request (RFC 9112 §6.1).
func TestContentLengthWithTransferEncodingCloses(t *testing.T) {
	be := newEchoBackend(t, "app")
	d := startDoor(t, parseConfig(t, appConfig(be.url, "")))
	for _, first := range []string{
		"POST /a HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET /nowhere HTTP/1.1\r\nHost: unknown.example.net\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	} {
		before := be.hits.Load()
		smuggled := "GET /smuggled HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
		c := d.dial(t)
		if _, err := io.WriteString(c, first+smuggled); err != nil {
			t.Fatal(err)
		}
		answer, err := io.ReadAll(c) // ends only if the door closes
		if isTimeout(err) {
			t.Fatalf("%q: connection kept open: %q", firstLine(first), answer)
		}
		if n := bytes.Count(answer, []byte("HTTP/1.1 ")); n != 1 {
			t.Errorf("%q: %d answers on the connection, want 1: %q", firstLine(first), n, answer)
		}
		if !bytes.Contains(bytes.ToLower(answer), []byte("connection: close")) {
			t.Errorf("%q: answer does not say the connection closes: %q", firstLine(first), answer)
		}
		if got := be.hits.Load() - before; strings.HasPrefix(first, "POST") && got != 1 || strings.HasPrefix(first, "GET") && got != 0 {
			t.Errorf("%q: backend hit %d times", firstLine(first), got)
		}
	}
}
