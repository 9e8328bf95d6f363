package proxy_test

// Tests of the direct path (forward.go): plain GET and HEAD requests
// forwarded over gatehouse's own keep-alive connections rather than through
// httputil.ReverseProxy and http.Transport.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/auth"
	"gatehouse/proxy"
	"gatehouse/routes"
)

// countingListener counts the connections a backend accepts.
type countingListener struct {
	net.Listener
	accepts atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepts.Add(1)
	}
	return c, err
}

// newCountingBackend serves h on loopback and counts its accepts.
func newCountingBackend(t *testing.T, h http.Handler) (string, *countingListener) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	cl := &countingListener{Listener: srv.Listener}
	srv.Listener = cl
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL, cl
}

// rawBackend is an HTTP/1.1 backend written on a bare TCP listener, so that
// a test says byte for byte what the backend answers and when it hangs up.
type rawBackend struct {
	url    string
	ln     *countingListener
	answer func(r *http.Request, conn, nth int) rawAnswer
	mu     sync.Mutex
	seen   []rawSeen
	// ends reports every connection whose serving loop stopped.
	ends chan connEnd
}

// rawAnswer is what a raw backend does with one request: write resp as it
// is, in a single write, then hang up if told to.
type rawAnswer struct {
	resp   string
	hangUp bool
}

// rawSeen is a request as a raw backend parsed it off the wire.
type rawSeen struct {
	Method, RequestURI, Host string
	Header                   http.Header
	Conn                     int // which accepted connection, from 0
	Nth                      int // which request on that connection, from 0
}

// connEnd says why a raw backend stopped serving a connection: err is nil
// when it hung up itself, else what reading the next request returned.
type connEnd struct {
	conn int
	err  error
}

func newRawBackend(t *testing.T, answer func(r *http.Request, conn, nth int) rawAnswer) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{
		url: "http://" + ln.Addr().String(), ln: &countingListener{Listener: ln},
		answer: answer, ends: make(chan connEnd, 1024),
	}
	var (
		wg     sync.WaitGroup
		connMu sync.Mutex
		conns  = map[net.Conn]bool{}
		closed bool
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for id := 0; ; id++ {
			c, err := b.ln.Accept()
			if err != nil {
				return
			}
			connMu.Lock()
			if closed {
				connMu.Unlock()
				c.Close()
				return
			}
			conns[c] = true
			wg.Add(1)
			connMu.Unlock()
			go func() {
				defer wg.Done()
				b.serveConn(c, id)
			}()
		}
	}()
	t.Cleanup(func() {
		b.ln.Close()
		connMu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		connMu.Unlock()
		wg.Wait()
	})
	return b
}

func (b *rawBackend) serveConn(c net.Conn, id int) {
	defer c.Close()
	br := bufio.NewReader(c)
	end := func(err error) {
		select {
		case b.ends <- connEnd{id, err}:
		default:
		}
	}
	for nth := 0; ; nth++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			end(err)
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		b.mu.Lock()
		b.seen = append(b.seen, rawSeen{
			Method: req.Method, RequestURI: req.RequestURI, Host: req.Host,
			Header: req.Header, Conn: id, Nth: nth,
		})
		b.mu.Unlock()
		a := b.answer(req, id, nth)
		if a.resp != "" {
			if _, err := io.WriteString(c, a.resp); err != nil {
				end(err)
				return
			}
		}
		if a.hangUp {
			c.Close()
			end(nil)
			return
		}
	}
}

// take returns the requests seen since the last take.
func (b *rawBackend) take() []rawSeen {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.seen
	b.seen = nil
	return s
}

// waitEnd waits for the serving loop of connection conn to stop.
func (b *rawBackend) waitEnd(t *testing.T, conn int, guard time.Duration) connEnd {
	t.Helper()
	deadline := time.After(guard)
	for {
		select {
		case e := <-b.ends:
			if e.conn == conn {
				return e
			}
		case <-deadline:
			t.Fatalf("backend connection %d still open after %v", conn, guard)
		}
	}
}

// okAnswer is a plain keep-alive answer of known length.
func okAnswer(body string) rawAnswer {
	return rawAnswer{resp: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body}
}

// conns lists which backend connection served each request.
func conns(seen []rawSeen) []int {
	var c []int
	for _, s := range seen {
		c = append(c, s.Conn)
	}
	return c
}

// diffAnswer is the backend of the differential test: one kind of answer
// per path, the same whichever gateway asks.
func diffAnswer(r *http.Request, _, _ int) rawAnswer {
	body := func(s string) string {
		if r.Method == http.MethodHead {
			return ""
		}
		return s
	}
	switch r.URL.Path {
	case "/probe":
		return rawAnswer{resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nprobe"}
	case "/close":
		return rawAnswer{resp: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\n" + body("bye"), hangUp: true}
	case "/conn-custom":
		return rawAnswer{resp: "HTTP/1.1 200 OK\r\nConnection: X-Secret, keep-alive\r\nX-Secret: s\r\nX-Keep: k\r\n" +
			"Keep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\n" + body("ok")}
	case "/hop-resp":
		return rawAnswer{resp: "HTTP/1.1 200 OK\r\nProxy-Authenticate: Basic realm=x\r\nUpgrade: h2c\r\nTrailer: X-Nope\r\n" +
			"Proxy-Connection: keep-alive\r\nX-Keep: k\r\nContent-Length: 2\r\n\r\n" + body("ok")}
	case "/chunked":
		return rawAnswer{resp: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" +
			body("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")}
	// The chunked answers carry a Content-Type: without one, whether the
	// door's net/http sniffs one depends, for ReverseProxy, on a race
	// between its first flush and its first write.
	case "/trailers":
		return rawAnswer{resp: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-T1\r\n\r\n" +
			body("5\r\nhello\r\n0\r\nX-T1: v1\r\n\r\n")}
	case "/trailers-extra":
		// One declared trailer and one the backend did not announce.
		return rawAnswer{resp: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-T1\r\n\r\n" +
			body("5\r\nhello\r\n0\r\nX-T1: v1\r\nX-T2: v2\r\n\r\n")}
	case "/trailers-undeclared":
		return rawAnswer{resp: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" +
			body("5\r\nhello\r\n0\r\nX-T3: v3\r\n\r\n")}
	case "/204":
		return rawAnswer{resp: "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"}
	case "/304":
		return rawAnswer{resp: "HTTP/1.1 304 Not Modified\r\nEtag: \"v1\"\r\nCache-Control: max-age=60\r\n\r\n"}
	case "/unknown-length":
		// Neither Content-Length nor chunked: the body ends when the
		// backend closes.
		return rawAnswer{resp: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body("until the backend closes"), hangUp: true}
	case "/hints":
		return rawAnswer{resp: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n" + body("page")}
	case "/many-hints":
		// More 1xx answers than the five the direct path once allowed.
		return rawAnswer{resp: strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", 7) +
			"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n" + body("page")}
	case "/unsolicited-continue":
		// A 100 Continue to a request that sent no Expect.
		return rawAnswer{resp: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n" + body("page")}
	case "/switch":
		return rawAnswer{resp: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n", hangUp: true}
	case "/garbage":
		return rawAnswer{resp: "NOT HTTP AT ALL\r\n\r\n", hangUp: true}
	case "/hangup":
		return rawAnswer{hangUp: true}
	}
	return rawAnswer{resp: "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 11\r\n" +
		"X-Multi: a\r\nX-Multi: b\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nCache-Control: no-store\r\n\r\n" + body("hello world")}
}

// clientAnswer is a response as a client parsed it, Date left out.
type clientAnswer struct {
	Informational []string // 1xx answers before the final one: "103 Link=[…]"
	Status        int
	Header        http.Header
	Body          string
	Trailer       http.Header
	ContentLength int64
	Chunked       bool
	Close         bool
}

// exchange sends one raw request on a fresh connection to addr and reads
// one response, 1xx answers included.
func exchange(t *testing.T, addr, method, request string) clientAnswer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(hangGuard))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatalf("writing %q: %v", firstLine(request), err)
	}
	br := bufio.NewReader(c)
	var a clientAnswer
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("%q: reading the response: %v", firstLine(request), err)
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			resp.Header.Del("Date")
			a.Informational = append(a.Informational, fmt.Sprintf("%d %v", resp.StatusCode, resp.Header))
			continue
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%q: reading the body: %v (got %q)", firstLine(request), err, body)
		}
		resp.Header.Del("Date")
		a.Status, a.Header, a.Body, a.Trailer = resp.StatusCode, resp.Header, string(body), resp.Trailer
		a.ContentLength, a.Chunked, a.Close = resp.ContentLength, slices.Contains(resp.TransferEncoding, "chunked"), resp.Close
		return a
	}
}

// rawRequest is a request head for the Cloudflare door's app route.
func rawRequest(method, target string, headers ...string) string {
	return rawRequestTo("app.example.com", method, target, headers...)
}

func rawRequestTo(host, method, target string, headers ...string) string {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// diffGateway is one gateway of the differential test: its Cloudflare door
// and the tailnet node of route "tn".
type diffGateway struct {
	name   string
	gw     *proxy.Gateway
	cf, tn string
}

func startDiffGateway(t *testing.T, name string, cfg *routes.Config, reverseProxyOnly bool) *diffGateway {
	t.Helper()
	logs := &logBuf{}
	gw := proxy.New(routes.Compile(cfg), proxy.Options{
		Logger:           slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ReverseProxyOnly: reverseProxyOnly,
	})
	cf := httptest.NewServer(gw.Door(routes.Cloudflare))
	tn := httptest.NewUnstartedServer(gw.TailnetHandler("tn", true))
	tn.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return auth.WithPeerLookup(ctx, staticPeer{})
	}
	tn.Start()
	t.Cleanup(func() {
		cf.Close()
		tn.Close()
		gw.Close()
		if t.Failed() {
			t.Logf("%s gateway log:\n%s", name, logs)
		}
	})
	return &diffGateway{name: name, gw: gw, cf: cf.Listener.Addr().String(), tn: tn.Listener.Addr().String()}
}

func hdrIs(t *testing.T, what string, h http.Header, key string, want ...string) {
	t.Helper()
	if got := h[key]; !slices.Equal(got, want) {
		t.Errorf("%s %s = %q, want %q", what, key, got, want)
	}
}

// TestDirectDifferential sends the same requests through a gateway with
// the direct path and through one with ReverseProxyOnly, and compares what
// the backend receives and what the client gets. Before each request the
// direct gateway also forwards a POST, which only ReverseProxy's Transport
// carries: a GET the direct path serves must not arrive on that
// connection, and one it leaves to ReverseProxy must.
func TestDirectDifferential(t *testing.T) {
	be := newRawBackend(t, diffAnswer)
	cfg := parseConfig(t, `
domain = "example.com"
server {
  upstream_idle_timeout = "10m"
}
route "app" {
  backend = "`+be.url+`"
  cloudflare {
    host   = "app"
    access = "app"
  }
}
route "tn" {
  backend = "`+be.url+`"
  tailnet {
    access           = "members"
    identity_headers = ["Tailscale-User-Login", "Remote-User"]
  }
}
route "photos" {
  backend = "`+be.url+`"
  cloudflare {
    host   = "photos"
    access = "family"
  }
}
`)
	direct := startDiffGateway(t, "direct", cfg, false)
	reverse := startDiffGateway(t, "reverse-proxy-only", cfg, true)
	// Family routes renew the session on every request.
	direct.gw.SetSignIn(renewingSignIn{})
	reverse.gw.SetSignIn(renewingSignIn{})

	type check func(t *testing.T, got rawSeen, resp clientAnswer)
	cases := []struct {
		name    string
		tailnet bool // through the tailnet node instead of the Cloudflare door
		method  string
		req     string
		direct  bool // the direct path serves it
		check   check
	}{
		{name: "plain GET", method: "GET", req: rawRequest("GET", "/plain"), direct: true,
			check: func(t *testing.T, got rawSeen, resp clientAnswer) {
				hdrIs(t, "backend", got.Header, "X-Forwarded-For", "127.0.0.1")
				hdrIs(t, "backend", got.Header, "X-Forwarded-Proto", "https")
				hdrIs(t, "backend", got.Header, "X-Forwarded-Host", "app.example.com")
				if got.Host != "app.example.com" || got.RequestURI != "/plain" {
					t.Errorf("backend got Host %q, URI %q", got.Host, got.RequestURI)
				}
				if resp.Status != 200 || resp.Body != "hello world" {
					t.Errorf("client got %d %q", resp.Status, resp.Body)
				}
				hdrIs(t, "client", resp.Header, "X-Multi", "a", "b")
				hdrIs(t, "client", resp.Header, "Set-Cookie", "a=1", "b=2")
			}},
		{name: "HEAD", method: "HEAD", req: rawRequest("HEAD", "/plain"), direct: true,
			check: func(t *testing.T, got rawSeen, resp clientAnswer) {
				if got.Method != "HEAD" {
					t.Errorf("backend got %s", got.Method)
				}
				hdrIs(t, "client", resp.Header, "Content-Length", "11")
				if resp.Body != "" || resp.ContentLength != 11 {
					t.Errorf("client got length %d, body %q", resp.ContentLength, resp.Body)
				}
			}},
		{name: "query", method: "GET", req: rawRequest("GET", "/plain?a=1&b=two%20words&c=%2F&d=%C3%A9&e&=f&g=a+b&h=x?y"), direct: true,
			check: func(t *testing.T, got rawSeen, _ clientAnswer) {
				if want := "/plain?a=1&b=two%20words&c=%2F&d=%C3%A9&e&=f&g=a+b&h=x?y"; got.RequestURI != want {
					t.Errorf("backend got %q, want %q", got.RequestURI, want)
				}
			}},
		{name: "empty query", method: "GET", req: rawRequest("GET", "/plain?"), direct: true},
		{name: "query with semicolon", method: "GET", req: rawRequest("GET", "/plain?a=1;b=2&c=3"), direct: false},
		{name: "query with bad escape", method: "GET", req: rawRequest("GET", "/plain?q=%zz&ok=1"), direct: false},
		{name: "encoded path", method: "GET", req: rawRequest("GET", "/caf%C3%A9/a%2Fb/../x%20y"), direct: true},
		{name: "Connection names a header", method: "GET", direct: true,
			req: rawRequest("GET", "/plain", "Connection: X-Foo, keep-alive", "X-Foo: secret", "X-Bar: kept"),
			check: func(t *testing.T, got rawSeen, _ clientAnswer) {
				hdrIs(t, "backend", got.Header, "X-Foo")
				hdrIs(t, "backend", got.Header, "Connection")
				hdrIs(t, "backend", got.Header, "X-Bar", "kept")
			}},
		{name: "Connection names gatehouse's headers", method: "GET", direct: true,
			req: rawRequest("GET", "/plain", "Connection: X-Forwarded-For, X-Real-Ip", "Connection: X-Forwarded-Proto,X-Forwarded-Host"),
			check: func(t *testing.T, got rawSeen, _ clientAnswer) {
				hdrIs(t, "backend", got.Header, "X-Forwarded-For", "127.0.0.1")
				hdrIs(t, "backend", got.Header, "X-Real-Ip", "127.0.0.1")
				hdrIs(t, "backend", got.Header, "X-Forwarded-Proto", "https")
				hdrIs(t, "backend", got.Header, "X-Forwarded-Host", "app.example.com")
			}},
		{name: "hop-by-hop request headers", method: "GET", direct: true,
			req: rawRequest("GET", "/plain", "Keep-Alive: timeout=5", "Proxy-Authorization: Basic eDp5",
				"Proxy-Connection: keep-alive", "Te: trailers", "Trailer: X-Something", "X-Keep: k"),
			check: func(t *testing.T, got rawSeen, _ clientAnswer) {
				for _, k := range []string{"Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Trailer", "Connection"} {
					hdrIs(t, "backend", got.Header, k)
				}
				hdrIs(t, "backend", got.Header, "Te", "trailers")
				hdrIs(t, "backend", got.Header, "X-Keep", "k")
			}},
		{name: "Te gzip", method: "GET", req: rawRequest("GET", "/plain", "Te: gzip"), direct: true,
			check: func(t *testing.T, got rawSeen, _ clientAnswer) { hdrIs(t, "backend", got.Header, "Te") }},
		{name: "Te gzip and trailers", method: "GET", req: rawRequest("GET", "/plain", "Te: gzip, Trailers"), direct: true,
			check: func(t *testing.T, got rawSeen, _ clientAnswer) { hdrIs(t, "backend", got.Header, "Te", "trailers") }},
		{name: "Upgrade without Connection upgrade", method: "GET", req: rawRequest("GET", "/plain", "Upgrade: websocket"), direct: false,
			check: func(t *testing.T, got rawSeen, _ clientAnswer) { hdrIs(t, "backend", got.Header, "Upgrade") }},
		{name: "repeated and empty headers", method: "GET", direct: true,
			req: rawRequest("GET", "/plain", "X-Multi: a", "X-Multi: b", "Accept: text/html", "Accept: */*;q=0.1",
				"X-Empty:", "User-Agent: curl/8.5.0", "Cookie: a=1", "Cookie: b=2"),
			check: func(t *testing.T, got rawSeen, _ clientAnswer) {
				hdrIs(t, "backend", got.Header, "X-Multi", "a", "b")
				hdrIs(t, "backend", got.Header, "Accept", "text/html", "*/*;q=0.1")
				hdrIs(t, "backend", got.Header, "X-Empty", "")
				hdrIs(t, "backend", got.Header, "User-Agent", "curl/8.5.0")
			}},
		{name: "GET with Content-Length 0", method: "GET", req: rawRequest("GET", "/plain", "Content-Length: 0"), direct: true,
			check: func(t *testing.T, got rawSeen, _ clientAnswer) { hdrIs(t, "backend", got.Header, "Content-Length") }},
		{name: "response Connection close", method: "GET", req: rawRequest("GET", "/close"), direct: true,
			check: func(t *testing.T, _ rawSeen, resp clientAnswer) {
				if resp.Status != 200 || resp.Body != "bye" {
					t.Errorf("client got %d %q", resp.Status, resp.Body)
				}
			}},
		{name: "response Connection names a header", method: "GET", req: rawRequest("GET", "/conn-custom"), direct: true,
			check: func(t *testing.T, _ rawSeen, resp clientAnswer) {
				hdrIs(t, "client", resp.Header, "X-Secret")
				hdrIs(t, "client", resp.Header, "Keep-Alive")
				hdrIs(t, "client", resp.Header, "X-Keep", "k")
			}},
		{name: "hop-by-hop response headers", method: "GET", req: rawRequest("GET", "/hop-resp"), direct: true,
			check: func(t *testing.T, _ rawSeen, resp clientAnswer) {
				for _, k := range []string{"Proxy-Authenticate", "Upgrade", "Trailer", "Proxy-Connection"} {
					hdrIs(t, "client", resp.Header, k)
				}
				hdrIs(t, "client", resp.Header, "X-Keep", "k")
			}},
		{name: "chunked", method: "GET", req: rawRequest("GET", "/chunked"), direct: true,
			check: func(t *testing.T, _ rawSeen, resp clientAnswer) {
				if resp.Body != "hello world" {
					t.Errorf("client got %q", resp.Body)
				}
			}},
		{name: "declared trailer", method: "GET", req: rawRequest("GET", "/trailers", "Te: trailers"), direct: true,
			check: func(t *testing.T, _ rawSeen, resp clientAnswer) {
				hdrIs(t, "client trailer", resp.Trailer, "X-T1", "v1")
			}},
		{name: "declared and undeclared trailers", method: "GET", req: rawRequest("GET", "/trailers-extra"), direct: true,
			check: func(t *testing.T, _ rawSeen, resp clientAnswer) {
				hdrIs(t, "client trailer", resp.Trailer, "X-T1", "v1")
				hdrIs(t, "client trailer", resp.Trailer, "X-T2", "v2")
			}},
		{name: "undeclared trailer", method: "GET", req: rawRequest("GET", "/trailers-undeclared"), direct: true,
			check: func(t *testing.T, _ rawSeen, resp clientAnswer) {
				hdrIs(t, "client trailer", resp.Trailer, "X-T3", "v3")
			}},
		{name: "204", method: "GET", req: rawRequest("GET", "/204"), direct: true,
			check: func(t *testing.T, _ rawSeen, resp clientAnswer) {
				if resp.Status != 204 || resp.Body != "" {
					t.Errorf("client got %d %q", resp.Status, resp.Body)
				}
				hdrIs(t, "client", resp.Header, "X-A", "1")
			}},
		{name: "304", method: "GET", req: rawRequest("GET", "/304", `If-None-Match: "v1"`), direct: true,
			check: func(t *testing.T, got rawSeen, resp clientAnswer) {
				hdrIs(t, "backend", got.Header, "If-None-Match", `"v1"`)
				if resp.Status != 304 || resp.Body != "" {
					t.Errorf("client got %d %q", resp.Status, resp.Body)
				}
				hdrIs(t, "client", resp.Header, "Etag", `"v1"`)
			}},
		{name: "unknown length", method: "GET", req: rawRequest("GET", "/unknown-length"), direct: true,
			check: func(t *testing.T, _ rawSeen, resp clientAnswer) {
				if resp.Status != 200 || resp.Body != "until the backend closes" {
					t.Errorf("client got %d %q", resp.Status, resp.Body)
				}
			}},
		{name: "103 early hints", method: "GET", req: rawRequest("GET", "/hints"), direct: true,
			check: func(t *testing.T, _ rawSeen, resp clientAnswer) {
				if len(resp.Informational) != 1 || !strings.HasPrefix(resp.Informational[0], "103 ") {
					t.Errorf("client got 1xx %q", resp.Informational)
				}
				hdrIs(t, "client", resp.Header, "Link")
			}},
		{name: "seven 1xx answers", method: "GET", req: rawRequest("GET", "/many-hints"), direct: true,
			check: func(t *testing.T, _ rawSeen, resp clientAnswer) {
				if len(resp.Informational) != 7 || resp.Status != 200 || resp.Body != "page" {
					t.Errorf("client got 1xx %q, then %d %q", resp.Informational, resp.Status, resp.Body)
				}
			}},
		{name: "unsolicited 100 Continue", method: "GET", req: rawRequest("GET", "/unsolicited-continue"), direct: true,
			check: func(t *testing.T, _ rawSeen, resp clientAnswer) {
				if want := []string{"100 map[]", "102 map[]"}; !slices.Equal(resp.Informational, want) || resp.Status != 200 {
					t.Errorf("client got 1xx %q, then %d, want %q then 200", resp.Informational, resp.Status, want)
				}
			}},
		{name: "renewed session cookie and a 103", method: "GET", req: rawRequestTo("photos.example.com", "GET", "/hints"), direct: true,
			check: func(t *testing.T, _ rawSeen, resp clientAnswer) {
				if len(resp.Informational) != 1 || strings.Contains(resp.Informational[0], "Set-Cookie") {
					t.Errorf("client got 1xx %q, want one 103 without the cookie", resp.Informational)
				}
				hdrIs(t, "client", resp.Header, "Set-Cookie", renewedCookie)
			}},
		{name: "backend switches protocols", method: "GET", req: rawRequest("GET", "/switch"), direct: true,
			check: func(t *testing.T, _ rawSeen, resp clientAnswer) {
				if resp.Status != http.StatusBadGateway {
					t.Errorf("client got %d", resp.Status)
				}
			}},
		{name: "backend answers garbage", method: "GET", req: rawRequest("GET", "/garbage"), direct: true,
			check: func(t *testing.T, _ rawSeen, resp clientAnswer) {
				if resp.Status != http.StatusBadGateway {
					t.Errorf("client got %d", resp.Status)
				}
			}},
		{name: "backend hangs up", method: "GET", req: rawRequest("GET", "/hangup"), direct: true,
			check: func(t *testing.T, _ rawSeen, resp clientAnswer) {
				if resp.Status != http.StatusBadGateway {
					t.Errorf("client got %d", resp.Status)
				}
			}},
		{name: "tailnet identity named in Connection", tailnet: true, method: "GET", direct: true,
			req: rawRequestTo("tn.tail1234.ts.net", "GET", "/plain", "Connection: Remote-User, Tailscale-User-Login, keep-alive",
				"Remote-User: "+attacker, "Tailscale-User-Login: "+attacker),
			check: func(t *testing.T, got rawSeen, _ clientAnswer) {
				hdrIs(t, "backend", got.Header, "Remote-User", "alice@example.com")
				hdrIs(t, "backend", got.Header, "Tailscale-User-Login", "alice@example.com")
			}},
	}

	// send runs one case through gw and returns the requests the backend
	// got for it: a retried request arrives twice.
	send := func(t *testing.T, gw *diffGateway, method, req string, tailnet bool) ([]rawSeen, clientAnswer) {
		t.Helper()
		addr := gw.cf
		if tailnet {
			addr = gw.tn
		}
		be.take()
		resp := exchange(t, addr, method, req)
		seen := be.take()
		if len(seen) == 0 {
			t.Fatalf("%s: the backend got nothing", gw.name)
		}
		return seen, resp
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			probe, _ := send(t, direct, "POST", rawRequest("POST", "/probe", "Content-Length: 1")+"x", false)
			seenDirect, respDirect := send(t, direct, c.method, c.req, c.tailnet)
			if served := seenDirect[0].Conn != probe[0].Conn; served != c.direct {
				t.Errorf("served by the direct path: %v, want %v (arrived on connection %d, ReverseProxy's is %d)",
					served, c.direct, seenDirect[0].Conn, probe[0].Conn)
			}
			seenReverse, respReverse := send(t, reverse, c.method, c.req, c.tailnet)
			gotDirect, gotReverse := seenDirect[len(seenDirect)-1], seenReverse[len(seenReverse)-1]

			// What the backend got.
			gotDirect.Conn, gotDirect.Nth, gotReverse.Conn, gotReverse.Nth = 0, 0, 0, 0
			if !reflect.DeepEqual(gotDirect, gotReverse) {
				t.Errorf("the backend got different requests\n direct: %+v\nreverse: %+v", gotDirect, gotReverse)
			}
			// What the client got.
			if !reflect.DeepEqual(respDirect, respReverse) {
				t.Errorf("the client got different answers\n direct: %+v\nreverse: %+v", respDirect, respReverse)
			}
			if c.check != nil {
				c.check(t, gotDirect, respDirect)
			}
		})
	}
}

// TestDirectConnectionReuse: sequential requests share one backend
// connection; a connection is given up when the backend says
// Connection: close or sends more than the response it announced.
func TestDirectConnectionReuse(t *testing.T) {
	t.Run("50 GETs, 1 connection", func(t *testing.T) {
		url, ln := newCountingBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "got "+r.URL.Path)
		}))
		d := startDoor(t, parseConfig(t, appConfig(url, "")))
		for i := range 50 {
			path := "/r" + strconv.Itoa(i)
			resp, body := d.get(t, "app.example.com", path, nil)
			if resp.StatusCode != 200 || string(body) != "got "+path {
				t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
			}
		}
		if n := ln.accepts.Load(); n != 1 {
			t.Errorf("50 sequential GETs took %d backend connections, want 1", n)
		}
	})

	t.Run("Connection close", func(t *testing.T) {
		// The backend says Connection: close but keeps the connection
		// open: only gatehouse honouring the header makes it dial anew.
		be := newRawBackend(t, func(r *http.Request, _, _ int) rawAnswer {
			if r.URL.Path == "/close" {
				return rawAnswer{resp: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye"}
			}
			return okAnswer("hello " + r.URL.Path)
		})
		d := startDoor(t, parseConfig(t, appConfig(be.url, "")))
		for _, path := range []string{"/a", "/close", "/b", "/c"} {
			want := "hello " + path
			if path == "/close" {
				want = "bye"
			}
			if resp, body := d.get(t, "app.example.com", path, nil); resp.StatusCode != 200 || string(body) != want {
				t.Fatalf("%s: %d %q, want 200 %q", path, resp.StatusCode, body, want)
			}
		}
		if got := conns(be.take()); !slices.Equal(got, []int{0, 0, 1, 1}) {
			t.Errorf("requests /a /close /b /c went on backend connections %v, want [0 0 1 1]", got)
		}
		if n := be.ln.accepts.Load(); n != 2 {
			t.Errorf("%d backend connections, want 2", n)
		}
	})

	t.Run("bytes beyond Content-Length", func(t *testing.T) {
		// After its 2-byte body the backend sends what looks like a
		// second response, in the same write; then it goes on serving
		// the connection as if nothing happened.
		be := newRawBackend(t, func(r *http.Request, _, _ int) rawAnswer {
			if r.URL.Path == "/extra" {
				return rawAnswer{resp: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" +
					"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nWRONG"}
			}
			return okAnswer("hello " + r.URL.Path)
		})
		d := startDoor(t, parseConfig(t, appConfig(be.url, "")))
		for _, c := range []struct{ path, want string }{{"/extra", "ok"}, {"/next", "hello /next"}, {"/last", "hello /last"}} {
			if resp, body := d.get(t, "app.example.com", c.path, nil); resp.StatusCode != 200 || string(body) != c.want {
				t.Fatalf("%s: %d %q, want 200 %q", c.path, resp.StatusCode, body, c.want)
			}
		}
		if got := conns(be.take()); !slices.Equal(got, []int{0, 1, 1}) {
			t.Errorf("requests /extra /next /last went on backend connections %v, want [0 1 1]", got)
		}
	})
}

// TestDirectStaleKeepAlive: a kept connection the backend has closed, or
// closes on receiving the next request, costs the client nothing: the
// request is sent once more on a fresh connection. Once only, and never
// after the backend has begun to answer.
func TestDirectStaleKeepAlive(t *testing.T) {
	t.Run("closed while idle", func(t *testing.T) {
		// The backend answers one request per connection and hangs up
		// without saying Connection: close.
		be := newRawBackend(t, func(r *http.Request, _, _ int) rawAnswer {
			a := okAnswer("hello " + r.URL.Path)
			a.hangUp = true
			return a
		})
		d := startDoor(t, parseConfig(t, appConfig(be.url, "")))
		if resp, body := d.get(t, "app.example.com", "/one", nil); resp.StatusCode != 200 || string(body) != "hello /one" {
			t.Fatalf("first: %d %q", resp.StatusCode, body)
		}
		if e := be.waitEnd(t, 0, hangGuard); e.err != nil {
			t.Fatalf("backend connection 0 ended with %v, want the backend hanging up", e.err)
		}
		if resp, body := d.get(t, "app.example.com", "/two", nil); resp.StatusCode != 200 || string(body) != "hello /two" {
			t.Fatalf("second, after the backend closed the kept connection: %d %q", resp.StatusCode, body)
		}
		if got := conns(be.take()); !slices.Equal(got, []int{0, 1}) {
			t.Errorf("backend connections %v, want [0 1]", got)
		}
	})

	t.Run("closed on the next request", func(t *testing.T) {
		// The second request on connection 0 arrives and the backend
		// hangs up without a byte of answer, as a backend does whose
		// keep-alive timeout fires at that moment.
		be := newRawBackend(t, func(r *http.Request, conn, nth int) rawAnswer {
			if conn == 0 && nth == 1 {
				return rawAnswer{hangUp: true}
			}
			return okAnswer("hello " + r.URL.Path)
		})
		d := startDoor(t, parseConfig(t, appConfig(be.url, "")))
		for _, path := range []string{"/one", "/two"} {
			if resp, body := d.get(t, "app.example.com", path, nil); resp.StatusCode != 200 || string(body) != "hello "+path {
				t.Fatalf("%s: %d %q", path, resp.StatusCode, body)
			}
		}
		seen := be.take()
		var got []string
		for _, s := range seen {
			got = append(got, fmt.Sprintf("%s@%d.%d", s.RequestURI, s.Conn, s.Nth))
		}
		if want := []string{"/one@0.0", "/two@0.1", "/two@1.0"}; !slices.Equal(got, want) {
			t.Errorf("backend got %v, want %v: /two first on the kept connection, then once on a new one", got, want)
		}
	})

	t.Run("retried once only", func(t *testing.T) {
		// Every connection but the first hangs up at once; the first one
		// after its first answer.
		be := newRawBackend(t, func(r *http.Request, conn, nth int) rawAnswer {
			if conn == 0 && nth == 0 {
				return okAnswer("hello")
			}
			return rawAnswer{hangUp: true}
		})
		d := startDoor(t, parseConfig(t, appConfig(be.url, "")))
		if resp, _ := d.get(t, "app.example.com", "/one", nil); resp.StatusCode != 200 {
			t.Fatalf("first: %d", resp.StatusCode)
		}
		if resp, _ := d.get(t, "app.example.com", "/two", nil); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("second: %d, want 502", resp.StatusCode)
		}
		if got := conns(be.take()); !slices.Equal(got, []int{0, 0, 1}) {
			t.Errorf("backend connections %v, want [0 0 1]: one retry, on a new connection", got)
		}
	})

	t.Run("not retried after part of an answer", func(t *testing.T) {
		be := newRawBackend(t, func(r *http.Request, conn, nth int) rawAnswer {
			if conn == 0 && nth == 1 {
				return rawAnswer{resp: "HTTP/1.1 200 OK\r\nContent-Le", hangUp: true}
			}
			return okAnswer("hello")
		})
		d := startDoor(t, parseConfig(t, appConfig(be.url, "")))
		if resp, _ := d.get(t, "app.example.com", "/one", nil); resp.StatusCode != 200 {
			t.Fatalf("first: %d", resp.StatusCode)
		}
		if resp, _ := d.get(t, "app.example.com", "/two", nil); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("second: %d, want 502", resp.StatusCode)
		}
		if got := conns(be.take()); !slices.Equal(got, []int{0, 0}) {
			t.Errorf("backend connections %v, want [0 0]: no retry once the backend began to answer", got)
		}
	})
}

// TestDirectBackendBreaksMidBody: a backend that dies halfway through a
// response gives the client a broken response, never a short one that
// looks complete. With a Content-Length the door's net/http would break
// the connection by itself; the chunked answer is the one only gatehouse
// aborting the response (http.ErrAbortHandler) keeps from ending cleanly.
func TestDirectBackendBreaksMidBody(t *testing.T) {
	url, _ := newCountingBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sized":
			w.Header().Set("Content-Length", "1000")
		case "/sized-large": // large enough for the splice path
			w.Header().Set("Content-Length", strconv.Itoa(4<<20))
		case "/chunked": // no length: chunked to the client
		}
		w.WriteHeader(200)
		io.WriteString(w, "0123456789")
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		c, _, err := rc.Hijack()
		if err != nil {
			panic(err)
		}
		c.Close()
	}))
	d := startDoor(t, parseConfig(t, appConfig(url, "")))
	for _, path := range []string{"/sized", "/sized-large", "/chunked"} {
		t.Run(path, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://app.example.com"+path, nil)
			resp, err := d.client.Do(req)
			if err != nil {
				// Nothing at all reached the client: broken, not short.
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err == nil {
				t.Fatalf("status %d, body %q ended cleanly; want an error", resp.StatusCode, body)
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("reading the body: %v, want unexpected EOF", err)
			}
		})
	}
}

// TestDirectHeaderInjection: a header value (or name) with a line break,
// which net/http never hands a handler but code inside gatehouse could,
// must never reach the backend as a header of its own.
func TestDirectHeaderInjection(t *testing.T) {
	be := newRawBackend(t, func(r *http.Request, _, _ int) rawAnswer { return okAnswer("hello") })
	cfg := parseConfig(t, appConfig(be.url, ""))
	gw := proxy.New(routes.Compile(cfg), proxy.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(gw.Close)
	h := gw.Door(routes.Cloudflare)

	for _, c := range []struct {
		name       string
		key, value string
	}{
		{"CRLF in a value", "X-Custom", "a\r\nX-Injected: 1"},
		{"LF in a value", "X-Custom", "a\nX-Injected: 1"},
		{"CRLF in a name", "X-Custom: a\r\nX-Injected", "1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			be.take()
			req := httptest.NewRequest("GET", "http://app.example.com/", nil)
			req.Header[c.key] = []string{c.value}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			seen := be.take()
			for _, s := range seen {
				for k := range s.Header {
					if strings.Contains(strings.ToLower(k), "injected") {
						t.Errorf("the backend got an injected header %s: %q (status %d)", k, s.Header[k], rec.Code)
					}
				}
			}
			// ReverseProxy's Transport refuses such a header: 502.
			if rec.Code != http.StatusBadGateway {
				t.Errorf("status %d, want 502 (the backend got %d requests)", rec.Code, len(seen))
			}
		})
	}
}

// TestDirectUnixSocket: a unix-socket backend takes the direct path, with
// its connection kept alive.
func TestDirectUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "app.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: ul}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Host+" "+r.URL.Path)
	})}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-served
	})
	d := startDoor(t, parseConfig(t, appConfig("unix://"+sock, "")))
	for i := range 10 {
		path := "/u" + strconv.Itoa(i)
		resp, body := d.get(t, "app.example.com", path, nil)
		if want := "app.example.com " + path; resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("%s: %d %q, want 200 %q", path, resp.StatusCode, body, want)
		}
	}
	if n := ln.accepts.Load(); n != 1 {
		t.Errorf("10 sequential GETs took %d connections to the socket, want 1", n)
	}
}

// TestDirectIdleTimeout: a kept connection is closed by gatehouse once it
// has been idle for upstream_idle_timeout.
func TestDirectIdleTimeout(t *testing.T) {
	be := newRawBackend(t, func(r *http.Request, _, _ int) rawAnswer { return okAnswer("hello") })
	d := startDoor(t, parseConfig(t, appConfig(be.url, `
server {
  upstream_idle_timeout = "200ms"
}`)))
	if resp, body := d.get(t, "app.example.com", "/", nil); resp.StatusCode != 200 || string(body) != "hello" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	// Not a timing assertion: the wait is far longer than the timeout.
	e := be.waitEnd(t, 0, 10*time.Second)
	if !errors.Is(e.err, io.EOF) {
		t.Errorf("the backend's read on the idle connection ended with %v, want EOF (gatehouse closing it)", e.err)
	}
}

// TestDirectEarlyHints: a 103 from the backend reaches the client with its
// own headers, and those do not leak into the final response.
func TestDirectEarlyHints(t *testing.T) {
	const link = "</style.css>; rel=preload; as=style"
	url, _ := newCountingBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", link)
		w.WriteHeader(http.StatusEarlyHints)
		if r.URL.Path == "/hints" {
			w.Header().Del("Link")
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "page")
	}))
	d := startDoor(t, parseConfig(t, appConfig(url, "")))
	for _, c := range []struct {
		path      string
		finalLink []string
	}{
		{"/hints", nil},
		{"/hints-kept", []string{link}},
	} {
		t.Run(c.path, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, fmt.Sprintf("%d %q", code, h["Link"]))
				return nil
			}}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "http://app.example.com"+c.path, nil)
			resp, body := d.do(t, req)
			mu.Lock()
			defer mu.Unlock()
			if want := []string{fmt.Sprintf("%d %q", 103, []string{link})}; !slices.Equal(got, want) {
				t.Errorf("client got 1xx %q, want %q", got, want)
			}
			if resp.StatusCode != 200 || string(body) != "page" {
				t.Errorf("final: %d %q", resp.StatusCode, body)
			}
			if l := resp.Header["Link"]; !slices.Equal(l, c.finalLink) {
				t.Errorf("final Link %q, want %q", l, c.finalLink)
			}
		})
	}
}

// TestDirectStreamHeadersFirst: the answer of unknown length reaches the
// client as soon as the backend has sent its headers, before any body, as
// ReverseProxy flushes them: a stream whose first event comes late (SSE,
// long polling) must not leave the client without a response meanwhile.
// The backend sends its body only after the client has the headers, so
// withholding them deadlocks (and the hang guard fails the test).
func TestDirectStreamHeadersFirst(t *testing.T) {
	for _, ct := range []string{"text/event-stream", "application/x-ndjson"} {
		t.Run(ct, func(t *testing.T) {
			release := make(chan struct{})
			url, _ := newCountingBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ct)
				w.WriteHeader(200)
				_ = http.NewResponseController(w).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, "data: 1\n\n")
			}))
			d := startDoor(t, parseConfig(t, appConfig(url, "")))
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://app.example.com/stream", nil)
			resp, err := d.client.Do(req)
			if err != nil {
				t.Fatalf("no response headers while the backend holds back its body: %v", err)
			}
			defer resp.Body.Close()
			close(release)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ct {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if body := mustReadAll(t, resp.Body); string(body) != "data: 1\n\n" {
				t.Errorf("body %q", body)
			}
		})
	}
}

// TestDirectBackendHeadBounded: a broken backend cannot make the direct
// path read without end before a body any more than the Transport would:
// an endless header line gets the client a 502 and the next request is
// served normally. Informational answers are bounded as the Transport
// bounds them, each head by the same size and all of them by the response
// timeout, not by their number (TestDirectDifferential's "seven 1xx
// answers"): endless ones end in a 504.
func TestDirectBackendHeadBounded(t *testing.T) {
	huge := "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", 11<<20) + "\r\nContent-Length: 2\r\n\r\nok"
	// Each 1xx just under the limit: together far over it.
	bigHint := "HTTP/1.1 103 Early Hints\r\nLink: </" + strings.Repeat("a", 4<<20) + ".css>; rel=preload\r\n\r\n"
	endless := strings.Repeat("HTTP/1.1 102 Processing\r\n\r\n", 100)
	be := newRawBackend(t, func(r *http.Request, conn, nth int) rawAnswer {
		switch r.URL.Path {
		case "/huge":
			return rawAnswer{resp: huge, hangUp: true}
		case "/big-hints":
			return rawAnswer{resp: bigHint + bigHint + bigHint + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}
		case "/endless":
			// 1xx answers and then nothing: no final answer comes.
			return rawAnswer{resp: endless}
		}
		return rawAnswer{resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"}
	})
	// The endless answers go to a route of their own with a short
	// response timeout; the others have the default, far longer than
	// reading their heads takes.
	cfg := parseConfig(t, appConfig(be.url, "")+`
route "endless" {
  backend          = "`+be.url+`"
  response_timeout = "1s"
  cloudflare {
    host   = "endless"
    access = "app"
  }
}
`)
	for _, reverseProxyOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("reverse-proxy-only=%v", reverseProxyOnly), func(t *testing.T) {
			d := startDoorWith(t, cfg, proxy.Options{ReverseProxyOnly: reverseProxyOnly})
			for _, c := range []struct {
				host, path string
				status     int
			}{
				{"app.example.com", "/huge", http.StatusBadGateway},
				{"app.example.com", "/big-hints", http.StatusOK},
				{"endless.example.com", "/endless", http.StatusGatewayTimeout},
			} {
				// Read raw: Go's client would count every 1xx head
				// against one limit of its own.
				if resp := exchange(t, d.addr, "GET", rawRequestTo(c.host, "GET", c.path)); resp.Status != c.status {
					t.Errorf("%s: status %d after %d 1xx answers (%d body bytes), want %d",
						c.path, resp.Status, len(resp.Informational), len(resp.Body), c.status)
				}
			}
			if resp, body := d.get(t, "app.example.com", "/fine", nil); resp.StatusCode != 200 || string(body) != "hello" {
				t.Errorf("after the broken answers: %d %q", resp.StatusCode, body)
			}
			if !reverseProxyOnly && !strings.Contains(d.log.String(), "exceed 10 MiB") {
				t.Errorf("the gateway log does not say why:\n%s", d.log.String())
			}
		})
	}
}
