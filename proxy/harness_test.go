package proxy_test

// The harness of the end-to-end tests: real backends and a real door on
// 127.0.0.1, a client that dials only that door, and raw-socket helpers for
// requests Go's client would normalise.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/proxy"
	"gatehouse/routes"
)

// hangGuard bounds every wait in these tests. It is never a timing
// assertion: a correct gateway finishes far sooner.
const hangGuard = 30 * time.Second

// logBuf collects the gateway's log for the failure report.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func parseConfig(t testing.TB, src string) *routes.Config {
	t.Helper()
	cfg, _, diags := routes.Parse([]byte(src), "t.hcl")
	if diags.HasErrors() {
		t.Fatalf("routes.Parse: %s\n--- source ---\n%s", diags.Error(), src)
	}
	return cfg
}

// door is a running Cloudflare door on a loopback listener.
type door struct {
	gw     *proxy.Gateway
	cfg    *routes.Config
	addr   string
	log    *logBuf
	client *http.Client
}

// startDoor serves the Cloudflare door of a gateway for cfg on a real
// http.Server configured like main.go's newServer.
func startDoor(t testing.TB, cfg *routes.Config) *door {
	t.Helper()
	return startDoorWith(t, cfg, proxy.Options{})
}

// startDoorWith is startDoor with gateway options (limits, metrics); the
// logger is always the test's.
func startDoorWith(t testing.TB, cfg *routes.Config, opt proxy.Options) *door {
	t.Helper()
	logs := &logBuf{}
	opt.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	gw := proxy.New(routes.Compile(cfg), opt)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sc := cfg.Server
	srv := &http.Server{
		Handler:           gw.Door(routes.Cloudflare),
		ReadHeaderTimeout: sc.ReadHeaderTimeout,
		IdleTimeout:       sc.IdleTimeout,
		MaxHeaderBytes:    sc.MaxHeaderBytes,
		ErrorLog:          log.New(logs, "http.Server: ", 0),
		ConnContext:       proxy.ConnContext,
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	d := &door{gw: gw, cfg: cfg, addr: ln.Addr().String(), log: logs}
	tr := &http.Transport{
		Proxy: nil,
		// Whatever the URL's host, the connection goes to the door.
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, "tcp", d.addr)
		},
		DisableCompression:    true,
		ExpectContinueTimeout: hangGuard,
		WriteBufferSize:       256 << 10,
		ReadBufferSize:        256 << 10,
	}
	d.client = &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(func() {
		_ = srv.Close()
		<-served
		tr.CloseIdleConnections()
		gw.Close()
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs)
		}
	})
	return d
}

// do sends req through the door with a hang guard and reads the body.
func (d *door) do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), hangGuard)
	defer cancel()
	resp, err := d.client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v", req.Method, req.URL, req.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s (Host %s): reading body: %v", req.Method, req.URL, req.Host, err)
	}
	return resp, body
}

// get is a GET for host and an already well-formed path.
func (d *door) get(t testing.TB, host, path string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+d.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header[k] = v
	}
	return d.do(t, req)
}

// dial opens a raw connection to the door with a hang-guard deadline.
func (d *door) dial(t testing.TB) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(hangGuard))
	t.Cleanup(func() { c.Close() })
	return c
}

// raw writes a request byte for byte and returns everything the door
// answers until it closes the connection (send Connection: close).
func (d *door) raw(t testing.TB, request string) []byte {
	t.Helper()
	c := d.dial(t)
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatalf("writing raw request: %v", err)
	}
	resp, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading raw response to %q: %v (got %q)", firstLine(request), err, resp)
	}
	return resp
}

// rawGet sends "GET target HTTP/1.1" with the given Host, exactly as written.
func (d *door) rawGet(t testing.TB, host, target string) []byte {
	t.Helper()
	return d.raw(t, "GET "+target+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// withoutDate drops the Date header line, the one part of a response that
// may differ between two identical answers.
func withoutDate(resp []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter(resp, []byte("\r\n")) {
		if bytes.HasPrefix(bytes.ToLower(line), []byte("date:")) {
			continue
		}
		out.Write(line)
	}
	return out.Bytes()
}

// parseRaw parses a raw response read by door.raw.
func parseRaw(t testing.TB, raw []byte) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("parsing response %q: %v", raw, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body of %q: %v", raw, err)
	}
	return resp, body
}

// seen is what an echo backend reports about the request it received.
type seen struct {
	Route      string
	Method     string
	Path       string
	RawPath    string
	RequestURI string
	RawQuery   string
	Host       string
	Header     http.Header
	Trailer    http.Header
	BodyLen    int64
}

// echoBackend answers every request with a JSON account of it.
type echoBackend struct {
	name string
	url  string
	hits atomic.Int64
	mu   sync.Mutex
	last *seen
}

func newEchoBackend(t testing.TB, name string) *echoBackend {
	t.Helper()
	b := &echoBackend{name: name}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s := &seen{
			Route: name, Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath,
			RequestURI: r.RequestURI, RawQuery: r.URL.RawQuery, Host: r.Host,
			Header: r.Header.Clone(), BodyLen: n, Trailer: r.Trailer.Clone(),
		}
		b.mu.Lock()
		b.last = s
		b.mu.Unlock()
		b.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Backend", name)
		_ = json.NewEncoder(w).Encode(s)
	}))
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return b
}

func decodeSeen(t testing.TB, body []byte) *seen {
	t.Helper()
	var s seen
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("backend answer is not an echo: %v: %q", err, body)
	}
	return &s
}

// appConfig is a one-route table: host app.example.com, access app, on the
// Cloudflare door; extra is pasted at the top level (server, cloudflare…).
func appConfig(backendURL, extra string) string {
	return extra + `
domain = "example.com"
route "app" {
  backend = "` + backendURL + `"
  cloudflare {
    host   = "app"
    access = "app"
  }
}
`
}

// waitFor waits for a channel with the hang guard.
func waitFor[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hangGuard):
		t.Fatalf("timed out (hang guard) waiting for %s", what)
		panic("unreachable")
	}
}
