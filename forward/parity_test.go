package forward_test

// The direct path against ReverseProxy, at the package's own boundary: the
// same request through a Backend of each kind, to the same raw backend,
// must reach the backend the same and come back to the client the same.

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"

	"gatehouse/forward"
)

// hangGuard bounds every wait; it is never a timing assertion.
const hangGuard = 30 * time.Second

// scriptedBackend answers every request with the bytes of its script,
// written at once, and records the requests as it parsed them.
type scriptedBackend struct {
	url  *url.URL
	mu   sync.Mutex
	resp string
	seen []seenRequest
}

type seenRequest struct {
	Method, RequestURI, Host string
	Header                   http.Header
}

func newScriptedBackend(t testing.TB) *scriptedBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &scriptedBackend{url: &url.URL{Scheme: "http", Host: ln.Addr().String()}}
	var wg sync.WaitGroup
	var connMu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			connMu.Lock()
			conns[c] = true
			connMu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				b.serveConn(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		connMu.Lock()
		for c := range conns {
			c.Close()
		}
		connMu.Unlock()
		wg.Wait()
	})
	return b
}

func (b *scriptedBackend) serveConn(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		b.mu.Lock()
		b.seen = append(b.seen, seenRequest{req.Method, req.RequestURI, req.Host, req.Header})
		resp := b.resp
		b.mu.Unlock()
		if _, err := io.WriteString(c, resp); err != nil {
			return
		}
	}
}

// answer sets the script and forgets the requests seen.
func (b *scriptedBackend) answer(resp string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.resp, b.seen = resp, nil
}

func (b *scriptedBackend) take() []seenRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.seen
	b.seen = nil
	return s
}

// gatehouseHeaders stand for the forwarding headers the door sets.
var gatehouseHeaders = []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip"}

// front serves a Backend as the door would: its own forwarding headers on
// the request (unless it asks for none: X-Test-Bare), a renewed session
// cookie on the answer when it asks for one (X-Test-Renew), 502 for an
// exchange that failed.
func front(t testing.TB, b *forward.Backend) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test-Bare") == "" {
			for _, k := range gatehouseHeaders {
				r.Header[k] = []string{"192.0.2.1"}
			}
		}
		if r.Header.Get("X-Test-Renew") != "" {
			w.Header().Add("Set-Cookie", "__Host-gatehouse=renewed; Path=/; Secure; HttpOnly")
		}
		if err := b.Serve(w, r); err != nil {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// pair is a direct Backend and a ReverseProxy-only one for the same
// backend, each behind a front of its own.
type pair struct {
	be              *scriptedBackend
	direct, reverse string
}

func newPair(t testing.TB) *pair {
	t.Helper()
	be := newScriptedBackend(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	route := forward.Route{URL: be.url, Protected: gatehouseHeaders, ResponseTimeout: hangGuard, IdleTimeout: time.Minute}
	cd := forward.NewClient(forward.Options{Logger: logger})
	cr := forward.NewClient(forward.Options{Logger: logger, ReverseProxyOnly: true})
	t.Cleanup(cd.CloseIdle)
	t.Cleanup(cr.CloseIdle)
	return &pair{be: be, direct: front(t, cd.Backend(route)), reverse: front(t, cr.Backend(route))}
}

// answer is what a client read: every 1xx and the final response.
type answer struct {
	Informational []string
	Status        int
	Header        http.Header
	Body          string
}

func roundTrip(t testing.TB, addr, method, request string) answer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(hangGuard))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var a answer
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("reading the answer to %q: %v", request, err)
		}
		resp.Header.Del("Date")
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			a.Informational = append(a.Informational, fmt.Sprintf("%d %v", resp.StatusCode, resp.Header))
			continue
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading the body of the answer to %q: %v", request, err)
		}
		a.Status, a.Header, a.Body = resp.StatusCode, resp.Header, string(body)
		return a
	}
}

// compare sends request through both Backends and fails on any difference.
func (p *pair) compare(t testing.TB, method, request, response string) (seenRequest, answer) {
	t.Helper()
	send := func(addr string) (seenRequest, answer) {
		p.be.answer(response)
		a := roundTrip(t, addr, method, request)
		seen := p.be.take()
		if len(seen) == 0 {
			return seenRequest{}, a
		}
		return seen[len(seen)-1], a
	}
	gotDirect, ansDirect := send(p.direct)
	gotReverse, ansReverse := send(p.reverse)
	if !reflect.DeepEqual(gotDirect, gotReverse) {
		t.Errorf("the backend got different requests for %q\n direct: %+v\nreverse: %+v", request, gotDirect, gotReverse)
	}
	if !reflect.DeepEqual(ansDirect, ansReverse) {
		t.Errorf("the client got different answers for %q to %q\n direct: %+v\nreverse: %+v", request, response, ansDirect, ansReverse)
	}
	return gotDirect, ansDirect
}

// headerLines keeps the "Name: value" lines of s that a server accepts,
// leaving out the framing headers the test sets itself.
func headerLines(s string, skip ...string) []string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		if !ok || !httpguts.ValidHeaderFieldName(k) || !httpguts.ValidHeaderFieldValue(v) || strings.ContainsAny(v, "\r\n") {
			continue
		}
		if ck := http.CanonicalHeaderKey(k); ck == "Host" || ck == "Content-Length" || ck == "Transfer-Encoding" ||
			ck == "Expect" || ck == "Upgrade" || ck == "Trailer" {
			continue
		}
		if slicesContainsFold(skip, k) {
			continue
		}
		out = append(out, k+": "+v)
	}
	return out
}

func slicesContainsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// informationalCodes are the 1xx answers a backend may send before its
// final one (101 is final).
var informationalCodes = []int{100, 102, 103, 199}

// script is a backend's answer: one 1xx per byte of infos (its code
// chosen by the byte, the same lines on each), then a 200 with headers.
func script(infos []byte, infoHeaders, finalHeaders []string, head bool) string {
	var b strings.Builder
	for _, c := range infos {
		code := informationalCodes[int(c)%len(informationalCodes)]
		fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", code, http.StatusText(code))
		for _, h := range infoHeaders {
			b.WriteString(h + "\r\n")
		}
		b.WriteString("\r\n")
	}
	b.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n")
	for _, h := range finalHeaders {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	if !head {
		b.WriteString("hello")
	}
	return b.String()
}

// FuzzDirectParity: over request headers, 1xx sequences and their
// headers, and response headers, both paths agree on what the backend gets
// and what the client gets. Its seeds run with every `go test`.
func FuzzDirectParity(f *testing.F) {
	f.Add("/plain", "Accept: */*\nX-Multi: a\nX-Multi: b", []byte{}, "", "X-A: 1\nSet-Cookie: a=1", false)
	f.Add("/hints", "X-Test-Renew: 1", []byte{2}, "Link: </a.css>; rel=preload", "", false)
	f.Add("/many", "", []byte{2, 2, 2, 2, 2, 2, 2}, "Link: </a.css>; rel=preload", "", false)
	f.Add("/continue", "X-Test-Renew: 1", []byte{0}, "", "X-A: 1", false)
	f.Add("/mixed", "Connection: X-Foo, keep-alive\nX-Foo: secret\nTe: trailers", []byte{1, 0, 2, 3}, "X-Hint: h", "Connection: X-Secret\nX-Secret: s\nKeep-Alive: timeout=5", true)
	f.Add("/protected", "Connection: X-Forwarded-For, X-Real-Ip\nX-Forwarded-Host: evil", []byte{}, "", "Proxy-Authenticate: Basic", false)
	f.Add("/bare", "X-Test-Bare: 1\nX-Forwarded-Host: evil\nX-Forwarded-Proto: http\nX-Forwarded-For: 10.0.0.1\nX-Real-Ip: 10.0.0.1\nForwarded: for=x", []byte{}, "", "", false)
	f.Add("/q?a=1&b=%zz", "User-Agent: curl/8", []byte{}, "", "", false)
	f.Add("/q?a=1;b=2", "Connection: User-Agent\nUser-Agent: x", []byte{2}, "Set-Cookie: early=1", "", false)
	f.Fuzz(func(t *testing.T, target, reqHeaders string, infos []byte, infoHeaders, finalHeaders string, head bool) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \t\r\n#\x00\x7f") || len(target) > 200 {
			t.Skip()
		}
		for _, c := range target {
			if c < 0x21 || c > 0x7e {
				t.Skip()
			}
		}
		if len(infos) > 12 {
			infos = infos[:12]
		}
		method := "GET"
		if head {
			method = "HEAD"
		}
		p := pairFor(t)
		request := method + " " + target + " HTTP/1.1\r\nHost: app.example.com\r\n" +
			strings.Join(append(headerLines(reqHeaders), ""), "\r\n") + "\r\n"
		response := script(infos, headerLines(infoHeaders, "Content-Type"), headerLines(finalHeaders, "Content-Type", "Connection"), head)
		p.compare(t, method, request, response)
	})
}

// pairFor shares one pair of Backends across the fuzz function's calls:
// a fresh pair per input would spend the fuzzing on listeners.
var (
	sharedPairOnce sync.Once
	sharedPair     *pair
)

func pairFor(t *testing.T) *pair {
	sharedPairOnce.Do(func() { sharedPair = newPair(&neverCleaned{T: t}) })
	return sharedPair
}

// neverCleaned keeps a shared pair alive for the whole test binary: its
// listeners and connections end with the process.
type neverCleaned struct{ *testing.T }

func (n *neverCleaned) Cleanup(func()) {}
