package signin

// The test gateway: the route table from routes.hcl text, the real proxy
// with its Cloudflare door behind TLS (as cloudflared would bring the
// request: https, from loopback), a backend that reports what it received,
// and browsers made of an http.Client with a cookie jar whose dialer sends
// every *.example.com name to the door.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/publicsuffix"

	"gatehouse/proxy"
	"gatehouse/ratelimit"
	"gatehouse/routes"
	"gatehouse/signin/oidctest"
)

// clock is the gateway's clock: real time plus an offset tests move.
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// backendSeen is what the backend received.
type backendSeen struct {
	Route  string      `json:"route"`
	Path   string      `json:"path"`
	Query  string      `json:"query"`
	Header http.Header `json:"header"`
}

type harness struct {
	t       *testing.T
	kc      *oidctest.Provider
	clock   *clock
	dir     string
	cfg     *routes.Config
	gw      *proxy.Gateway
	si      *SignIn
	door    *httptest.Server
	backend *httptest.Server
	pool    any
	client  *http.Client // provider-facing client of the gateway
	logs    *logBuffer   // sign-in's log, for what it says

	mu   sync.Mutex
	seen []backendSeen
}

// logBuffer keeps a log for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type harnessOpts struct {
	oidcExtra string // extra attributes in the oidc block
	startOP   bool
	// limits, tokenRule and failureRule set device token limits.
	limits      *ratelimit.Registry
	tokenRule   ratelimit.Rule
	failureRule ratelimit.Rule
}

const testRoutes = `
domain = "example.com"

lan {
  listen         = ["127.0.0.1:8443"]
  dns_token_file = "secret"
}

oidc {
  issuer             = %q
  client_id          = "gatehouse"
  client_secret_file = "secret"
  cookie_domain      = "example.com"
  groups_from_access_token = ["realm_access.roles", "resource_access.gatehouse.roles"]
  refresh_interval   = "5m"
  session_lifetime   = "720h"
  cookie_key_file    = "state/cookie.keys"
%s
}

route "photos" {
  backend     = %q
  description = "Family photos"
  icon        = "📷"
  cloudflare {
    host   = "photos"
    access = "family"
  }
  lan {
    access = "family"
  }
  path "/api/" {
    cloudflare = "app"
    lan        = "app"
  }
}

route "files" {
  backend = %q
  cloudflare {
    host   = "files"
    access = "family"
  }
}

route "request" {
  backend = %q
  cloudflare {
    host   = "request"
    access = "family"
    groups = ["/parents", "family-admin"]
  }
}

route "passwords" {
  backend = %q
  cloudflare {
    host   = "passwords"
    access = "app"
  }
}

route "music" {
  backend = %q
  cloudflare {
    host   = "music"
    access = "family"
    identity_headers = ["X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups",
      "X-Forwarded-Preferred-Username", "Remote-User", "Remote-Email", "Remote-Groups", "X-Remote-User"]
  }
  path "/rest/" {
    cloudflare = "app"
  }
}
`

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	h := &harness{t: t, clock: &clock{}, dir: t.TempDir(), logs: &logBuffer{}}
	h.kc = newKeycloak(t, "127.0.0.1:0")
	h.addFamily()
	if o.startOP {
		h.kc.Start()
	}
	h.backend = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := backendSeen{Route: strings.Split(r.Host, ".")[0], Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone()}
		h.mu.Lock()
		h.seen = append(h.seen, s)
		h.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s)
	}))
	t.Cleanup(h.backend.Close)
	h.writeConfig(o.oidcExtra)

	pool := oidctest.CertPool()
	h.client = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsClientConfig(pool)}, Timeout: 10 * time.Second}
	t.Cleanup(h.client.CloseIdleConnections)
	h.gw = proxy.New(routes.Compile(h.cfg), proxy.Options{Logger: testLogger(t)})
	t.Cleanup(h.gw.Close)
	var err error
	h.si, err = New(h.cfg.OIDC, h.signInOptions(o))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.si.Close() })
	h.gw.SetSignIn(h.si)
	h.door = httptest.NewUnstartedServer(h.gw.Door(routes.Cloudflare))
	h.door.StartTLS()
	t.Cleanup(h.door.Close)
	h.pool = pool
	if o.startOP {
		h.waitReady()
	}
	return h
}

// signInOptions are the gateway's sign-in options: the harness's clock,
// fast retries and probes, and a log kept for assertions.
func (h *harness) signInOptions(o harnessOpts) Options {
	log := slog.New(slog.NewTextHandler(io.MultiWriter(h.logs, tWriter{h.t}), &slog.HandlerOptions{Level: slog.LevelInfo}))
	if !testing.Verbose() {
		log = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	sopt := Options{
		Table: h.gw.Table, Log: log, HTTPClient: h.client, Now: h.clock.Now,
		RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, ProbeEvery: 200 * time.Millisecond,
		RequestTimeout:  5 * time.Second,
		GrantCheckEvery: 50 * time.Millisecond,
		DeviceTokenRule: o.tokenRule, DeviceTokenFailures: o.failureRule,
	}
	if o.limits != nil {
		sopt.Limits = o.limits
	}
	return sopt
}

func (h *harness) writeConfig(extra string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, "secret"), []byte(oidctest.Secret+"\n"), 0o600); err != nil {
		h.t.Fatal(err)
	}
	be := h.backend.URL
	src := fmt.Sprintf(testRoutes, h.kc.Issuer, extra, be, be, be, be, be)
	path := filepath.Join(h.dir, "routes.hcl")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		h.t.Fatal(err)
	}
	cfg, _, diags := routes.Load(path)
	if cfg == nil {
		h.t.Fatalf("routes: %v", diags)
	}
	for _, w := range cfg.Warnings {
		h.t.Errorf("unexpected warning: %v", w)
	}
	h.cfg = cfg
}

func (h *harness) addFamily() {
	h.kc.AddUser(&oidctest.User{Username: "alice", Email: "alice@example.com", EmailVerified: true, Name: "Alice",
		Groups: []string{"/family", "/parents"}, RealmRoles: []string{"family-admin"}})
	h.kc.AddUser(&oidctest.User{Username: "kid", Email: "kid@example.com", EmailVerified: true, Name: "Kid",
		Groups: []string{"/family"}})
	h.kc.AddUser(&oidctest.User{Username: "bob", Email: "bob@example.com", EmailVerified: true, Name: "Bob",
		Groups: []string{"/family"}, ClientRoles: map[string][]string{"gatehouse": {"family-admin"}}})
	h.kc.AddUser(&oidctest.User{Username: "mallory", Email: "mallory@evil.example@example.com", EmailVerified: true,
		Groups: []string{"/family"}})
}

func (h *harness) waitReady() {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !h.si.Ready() {
		if time.Now().After(deadline) {
			h.t.Fatal("sign-in never became ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// browser is one user agent: a cookie jar, TLS trust, and a dialer that
// sends *.example.com to the door.
type browser struct {
	t      *testing.T
	h      *harness
	c      *http.Client
	jar    http.CookieJar
	header http.Header // sent on every request (fetch metadata)
	// responses records every response, redirects included.
	mu        sync.Mutex
	responses []*http.Response
	// door is where *.example.com is dialled: the Cloudflare door unless
	// the test moves the browser (useDoor).
	door string
}

// useDoor sends the browser's next connections to another door, as a
// phone that walks in at home and reaches the LAN door by the same names.
func (b *browser) useDoor(addr string) {
	b.mu.Lock()
	b.door = addr
	b.mu.Unlock()
	if tr, ok := b.c.Transport.(recorder).rt.(*http.Transport); ok {
		tr.CloseIdleConnections()
	}
}

func (h *harness) browser() *browser {
	jar, err := cookiejar.New(&cookiejar.Options{PublicSuffixList: publicsuffix.List})
	if err != nil {
		h.t.Fatal(err)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	var b *browser
	tr := &http.Transport{
		TLSClientConfig: tlsClientConfig(oidctest.CertPool()),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, _ := net.SplitHostPort(addr)
			if host == "example.com" || strings.HasSuffix(host, ".example.com") {
				b.mu.Lock()
				addr = b.door
				b.mu.Unlock()
			}
			return dialer.DialContext(ctx, network, addr)
		},
	}
	b = &browser{t: h.t, h: h, jar: jar, door: h.door.Listener.Addr().String(), header: http.Header{
		"Accept":         {"text/html,application/xhtml+xml,*/*;q=0.8"},
		"Sec-Fetch-Mode": {"navigate"},
		"Sec-Fetch-Dest": {"document"},
		"Sec-Fetch-Site": {"none"},
	}}
	b.c = &http.Client{Jar: jar, Timeout: 20 * time.Second, Transport: recorder{b, tr}}
	h.t.Cleanup(tr.CloseIdleConnections)
	return b
}

type recorder struct {
	b  *browser
	rt http.RoundTripper
}

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	for k, v := range r.b.header {
		if _, set := req.Header[k]; !set {
			req.Header[k] = v
		}
	}
	resp, err := r.rt.RoundTrip(req)
	if err == nil {
		r.b.mu.Lock()
		r.b.responses = append(r.b.responses, resp)
		r.b.mu.Unlock()
	}
	return resp, err
}

func (b *browser) resetLog() {
	b.mu.Lock()
	b.responses = nil
	b.mu.Unlock()
}

// findResponse returns the first recorded response for which f holds.
func (b *browser) findResponse(f func(*http.Response) bool) *http.Response {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.responses {
		if f(r) {
			return r
		}
	}
	return nil
}

func (b *browser) get(u string, hdr ...string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// noRedirects makes the next requests stop at the first response.
func (b *browser) noRedirects(on bool) {
	if on {
		b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	} else {
		b.c.CheckRedirect = nil
	}
}

// signIn opens u, signs in at the provider's login page as user, and
// returns the final response (the backend's, after the return redirect).
func (b *browser) signIn(u, user string) (*http.Response, string) {
	b.t.Helper()
	resp, body := b.get(u)
	if !strings.Contains(body, `name="username"`) {
		b.t.Fatalf("GET %s: want the provider's login page, got %d %s", u, resp.StatusCode, body)
	}
	return b.submitLogin(resp, user)
}

// submitLogin fills in the provider's login form reached in resp.
func (b *browser) submitLogin(resp *http.Response, user string) (*http.Response, string) {
	b.t.Helper()
	id := resp.Request.URL.Query().Get("authRequestID")
	login := resp.Request.URL.ResolveReference(&url.URL{Path: oidctest.RealmPath + "/login"})
	form := url.Values{"id": {id}, "username": {user}, "password": {"pw-" + user}}
	req, _ := http.NewRequest(http.MethodPost, login.String(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse("https://photos.example.com/")
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func decodeSeen(t *testing.T, body string) backendSeen {
	t.Helper()
	var s backendSeen
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("not the backend's answer: %v: %s", err, body)
	}
	return s
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// newKeycloak prepares the test's provider at addr (127.0.0.1:0 for any
// port) without starting it; it stops when the test ends.
func newKeycloak(t *testing.T, addr string) *oidctest.Provider {
	t.Helper()
	kc, err := oidctest.New(addr, oidctest.Options{Log: testLogger(t), Fail: func(err error) { t.Fatal(err) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Stop)
	return kc
}

// tlsClientConfig trusts the provider's certificate.
func tlsClientConfig(pool *x509.CertPool) *tls.Config { return &tls.Config{RootCAs: pool} }

func mustKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// mustSign fails the test when a token cannot be signed.
func mustSign(t *testing.T) func(string, error) string {
	return func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}
