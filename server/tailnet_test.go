package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"tailscale.com/ipn/ipnlocal"
	"tailscale.com/tailcfg"
	"tailscale.com/tsnet"
	"tailscale.com/tstest/integration/testcontrol"

	"gatehouse/tailnet/tailnettest"
)

const magicDNS = "tail-scale.ts.net"

// startControl runs an in-process control server with DERP and STUN on
// loopback: the whole tailnet lives inside the test process.
func startControl(t testing.TB) *testcontrol.Server {
	t.Helper()
	return startControlWith(t, magicDNS)
}

// startControlWith runs the control server; an empty MagicDNS domain means
// a tailnet without HTTPS certificates.
func startControlWith(t testing.TB, dnsDomain string) *testcontrol.Server {
	t.Helper()
	return tailnettest.Control(t, dnsDomain)
}

// certIssuer stands in for Let's Encrypt: tailscaled asks it for the
// node's certificate.
type certIssuer struct {
	ca    *tailnettest.CA
	mu    sync.Mutex
	certs map[string]ipnlocal.TLSCertKeyPair
	fail  bool
	calls int
}

func newCertIssuer(t testing.TB) *certIssuer {
	return &certIssuer{ca: tailnettest.NewCA(t), certs: map[string]ipnlocal.TLSCertKeyPair{}}
}

func (ci *certIssuer) getCert(hostname string) (*ipnlocal.TLSCertKeyPair, error) {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	ci.calls++
	if ci.fail {
		return nil, errors.New("issuer unavailable")
	}
	if c, ok := ci.certs[hostname]; ok {
		return &c, nil
	}
	certPEM, keyPEM, err := ci.ca.Issue(time.Now().UnixNano(), hostname, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		return nil, err
	}
	c := ipnlocal.TLSCertKeyPair{CertPEM: certPEM, KeyPEM: keyPEM}
	ci.certs[hostname] = c
	return &c, nil
}

func (ci *certIssuer) setFail(v bool) {
	ci.mu.Lock()
	ci.fail = v
	ci.mu.Unlock()
}

func (ci *certIssuer) pool() *x509.CertPool { return ci.ca.Pool() }

// peer is a client device on the tailnet.
type peer struct {
	s     *tsnet.Server
	login string
	http  *http.Client
}

func startPeer(t testing.TB, ctx context.Context, controlURL, name string, tags []string, roots *x509.CertPool) *peer {
	t.Helper()
	p := &peer{}
	p.s, p.login = tailnettest.Peer(t, ctx, controlURL, name, tags)
	p.http = &http.Client{
		Transport: &http.Transport{
			DialContext:       p.s.Dial,
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			DisableKeepAlives: true, // every request is a new connection and a new WhoIs
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return p
}

type answer struct {
	status int
	body   string
	header http.Header
}

// get asks until the tailnet has settled (a new node takes a moment to be
// reachable), then returns the first real answer.
func (p *peer) get(t testing.TB, url string, hdr ...string) answer {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // hang guard
	for {
		req, _ := http.NewRequest("GET", url, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			if hdr[i] == "Host" {
				req.Host = hdr[i+1] // a Host in Header is not sent
				continue
			}
			req.Header.Set(hdr[i], hdr[i+1])
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := p.http.Do(req.WithContext(ctx))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			cancel()
			return answer{resp.StatusCode, string(b), resp.Header}
		}
		cancel()
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// identityBackend reports the identity headers it received.
func identityBackend(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := map[string]string{"route": name, "path": r.URL.Path}
		for k, v := range r.Header {
			lk := strings.ToLower(k)
			if strings.HasPrefix(lk, "tailscale") || strings.HasPrefix(lk, "remote") || strings.HasPrefix(lk, "x-forwarded-user") {
				got[k] = strings.Join(v, ",")
			}
		}
		json.NewEncoder(w).Encode(got)
	})
}

func tailnetConfig(controlURL, stateDir, keyFile string, admins []string, routesHCL string) string {
	q := func(ss []string) string {
		if ss == nil {
			ss = []string{}
		}
		b, _ := json.Marshal(ss)
		return string(b)
	}
	return fmt.Sprintf(`domain = "example.com"
cloudflare {
  listen = "127.0.0.1:1"
}
tailnet {
  hostname         = "gatehouse"
  state_dir        = %q
  auth_key_file    = %q
  control_url      = %q
  admins           = %s
  admin_capability = "example.com/cap/gatehouse"
}
%s`, stateDir, keyFile, controlURL, q(admins), routesHCL)
}

func tailnetRoute(name, backend, access string, extra string) string {
	return fmt.Sprintf(`
route %q {
  backend = %q
  tailnet {
    access = %q
    %s
  }
}
`, name, backend, access, extra)
}

// writeAuthKey writes an auth key file in dir (testcontrol takes any key).
func writeAuthKey(t testing.TB, dir string) string {
	t.Helper()
	keyFile := filepath.Join(dir, "authkey")
	if err := os.WriteFile(keyFile, []byte("tskey-test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyFile
}

// startTailnetGateway runs a gateway whose tailnet nodes take their
// certificates from issuer.
func startTailnetGateway(t testing.TB, configPath string, issuer *certIssuer) *testServer {
	t.Helper()
	return startTailnetGatewayLogging(t, configPath, issuer, nil)
}

// startTailnetGatewayLogging is startTailnetGateway with the log kept in
// log (nil: discarded).
func startTailnetGatewayLogging(t testing.TB, configPath string, issuer *certIssuer, log *syncLog) *testServer {
	t.Helper()
	o := Options{
		TailnetStarted: func(name string, s *tsnet.Server) {
			tsnet.TestHooks.LocalBackend(s).ForTest().ConfigureCerts(issuer.getCert)
		},
	}
	if log != nil {
		o.Log = slog.New(slog.NewTextHandler(log, nil))
	}
	return startServer(t, configPath, o)
}

// waitLog waits until the log has a line containing want and returns the
// whole log.
func waitLog(t testing.TB, log *syncLog, want string) string {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second) // hang guard
	for {
		if s := log.String(); strings.Contains(s, want) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", want, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The tailnet door, end to end over real WireGuard and real TLS: admins by
// login, tag and grant reach an admin route; another user gets a 403 there
// naming the user and the device, and a 200 on a members route; spoofed
// identity headers change nothing; the admin route does not exist on the
// Cloudflare door; a route closed on the tailnet gets no node; a per-route
// node removed from the table logs out of the control server and its
// state goes.
func TestTailnetDoor(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several tailnet nodes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	control := startControl(t)
	controlURL := control.HTTPTestServer.URL
	issuer := newCertIssuer(t)

	admin := startPeer(t, ctx, controlURL, "laptop", nil, issuer.pool())
	family := startPeer(t, ctx, controlURL, "phone", nil, issuer.pool())
	tagged := startPeer(t, ctx, controlURL, "admin-box", []string{"tag:admin-laptop"}, issuer.pool())
	server := startPeer(t, ctx, controlURL, "nas", []string{"tag:server"}, issuer.pool())
	if admin.login == "" || family.login == "" || admin.login == family.login {
		t.Fatalf("testcontrol users: admin %q, family %q", admin.login, family.login)
	}

	dir := t.TempDir()
	keyFile := writeAuthKey(t, dir)
	radarr := startBackend(t, identityBackend("radarr"))
	radicale := startBackend(t, identityBackend("radicale"))
	routesHCL := tailnetRoute("radarr", radarr, "admin", "") +
		tailnetRoute("radicale", radicale, "members", `identity_headers = ["Tailscale-User-Login", "Remote-User"]`) +
		tailnetRoute("vault", radicale, "closed", "")
	config := filepath.Join(dir, "routes.hcl")
	writeFile(t, config, tailnetConfig(controlURL, filepath.Join(dir, "state"), keyFile,
		[]string{admin.login, "tag:admin-laptop"}, routesHCL))
	log := &syncLog{}
	gw := startTailnetGatewayLogging(t, config, issuer, log)
	if running := gw.Nodes().Running(); slices.Contains(running, "vault") || !slices.Contains(running, "radarr") {
		t.Errorf("nodes %v: want radarr's and no node for vault, closed on the tailnet", running)
	}

	radarrURL := "https://radarr." + magicDNS + "/movies"
	radicaleURL := "https://radicale." + magicDNS + "/cal"

	t.Run("admin by login", func(t *testing.T) {
		a := admin.get(t, radarrURL)
		if a.status != 200 || !strings.Contains(a.body, `"route":"radarr"`) {
			t.Fatalf("admin on radarr: %d %s", a.status, a.body)
		}
	})
	t.Run("admin by tag", func(t *testing.T) {
		if a := tagged.get(t, radarrURL); a.status != 200 {
			t.Fatalf("tag:admin-laptop on radarr: %d %s", a.status, a.body)
		}
	})
	t.Run("other user", func(t *testing.T) {
		a := family.get(t, radarrURL, "Tailscale-User-Login", admin.login, "Tailscale_User_Login", admin.login, "Remote-User", admin.login)
		if a.status != 403 || !strings.Contains(a.body, family.login+" on the device phone") {
			t.Fatalf("family on radarr: %d %s (want 403 naming %s on the device phone)", a.status, a.body, family.login)
		}
		if !strings.Contains(a.body, "tailnet.admins") {
			t.Errorf("403 page does not say how to get access: %s", a.body)
		}
		// Naming them in Connection must not make gatehouse's own
		// identity headers disappear either.
		m := family.get(t, radicaleURL, "Tailscale-User-Login", admin.login, "Remote_User", admin.login,
			"Connection", "Tailscale-User-Login, Remote-User")
		if m.status != 200 {
			t.Fatalf("family on members route: %d %s", m.status, m.body)
		}
		var got map[string]string
		json.Unmarshal([]byte(m.body), &got)
		if got["Tailscale-User-Login"] != family.login || got["Remote-User"] != family.login || got["Remote_user"] != "" {
			t.Fatalf("identity headers at the backend: %v (want %s, spoofed copies gone)", got, family.login)
		}
	})
	t.Run("tagged server is not a member", func(t *testing.T) {
		if a := server.get(t, radicaleURL); a.status != 403 {
			t.Fatalf("tag:server on members route: %d %s", a.status, a.body)
		}
	})
	t.Run("grant", func(t *testing.T) {
		control.SetGlobalAppCaps(tailcfg.PeerCapMap{
			"example.com/cap/gatehouse": []tailcfg.RawMessage{`{"role":"admin"}`},
		})
		defer control.SetGlobalAppCaps(nil)
		deadline := time.Now().Add(60 * time.Second)
		for {
			a := family.get(t, radarrURL)
			if a.status == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("granted capability never admitted the user: %d", a.status)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	t.Run("plain http redirects", func(t *testing.T) {
		a := admin.get(t, "http://radarr."+magicDNS+"/x?y=1")
		if a.status != http.StatusPermanentRedirect || a.header.Get("Location") != "https://radarr."+magicDNS+"/x?y=1" {
			t.Fatalf("http: %d %v", a.status, a.header)
		}
	})
	t.Run("not through cloudflare", func(t *testing.T) {
		c := &http.Client{}
		_, unknown := get(t, c, gw.addr, "nothing.example.com", "/")
		for _, host := range []string{"radarr.example.com", "radarr", "radarr." + magicDNS} {
			st, body := get(t, c, gw.addr, host, "/movies")
			if st != 404 || body != unknown {
				t.Errorf("%s through the cloudflare door: %d, same 404 as unknown host: %v", host, st, body == unknown)
			}
		}
	})
	t.Run("route removed stops its node", func(t *testing.T) {
		if !slices.Contains(gw.Nodes().Running(), "radarr") {
			t.Fatalf("nodes before: %v", gw.Nodes().Running())
		}
		writeFile(t, config, tailnetConfig(controlURL, filepath.Join(dir, "state"), keyFile,
			[]string{admin.login}, tailnetRoute("radicale", radicale, "members", "")))
		if err := gw.waitReload(t); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(gw.Nodes().Running(), "radarr") {
			t.Fatalf("radarr node still running: %v", gw.Nodes().Running())
		}
		logged := waitLog(t, log, "tailnet node logged out of the control server and its state removed")
		if !strings.Contains(logged, "node=radarr") {
			t.Errorf("the logout is not radarr's:\n%s", logged)
		}
		if _, err := os.Stat(filepath.Join(dir, "state", "radarr")); !os.IsNotExist(err) {
			t.Errorf("radarr's state directory is still there: %v", err)
		}
		if a := admin.get(t, radicaleURL); a.status != 200 {
			t.Fatalf("radicale after radarr's removal: %d", a.status)
		}
		// The node is gone from the tailnet: nothing answers its name.
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", radarrURL, nil)
		if resp, err := admin.http.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("radarr still answers after its route was removed: %d", resp.StatusCode)
		}
	})
	t.Run("certificate from the state directory after restart", func(t *testing.T) {
		gw.stop()
		issuer.setFail(true) // tailscaled cannot get a certificate now
		issuer.mu.Lock()
		callsBefore := issuer.calls
		issuer.mu.Unlock()
		startTailnetGateway(t, config, issuer)
		a := admin.get(t, radicaleURL)
		if a.status != 200 {
			t.Fatalf("radicale after restart with the issuer down: %d %s", a.status, a.body)
		}
		issuer.mu.Lock()
		defer issuer.mu.Unlock()
		if issuer.calls != callsBefore {
			t.Fatalf("the restarted node asked for a certificate (%d calls) instead of using the stored one", issuer.calls-callsBefore)
		}
		stored, err := filepath.Glob(filepath.Join(dir, "state", "radicale", "certs", "tailnet", "*.crt"))
		if err != nil || len(stored) != 1 {
			t.Fatalf("stored certificate: %v %v", stored, err)
		}
		pemBytes, _ := os.ReadFile(stored[0])
		if !bytes.Contains(pemBytes, []byte("BEGIN CERTIFICATE")) {
			t.Fatalf("stored certificate is not PEM")
		}
	})
}

// With the control server unreachable, the tailnet door keeps retrying in
// the background and the Cloudflare door serves.
func TestCloudflareDoorServesWhileControlIsDown(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String()
	dead.Close() // nothing listens here any more

	dir := t.TempDir()
	keyFile := writeAuthKey(t, dir)
	app := startBackend(t, &reloadBackend{name: "app", release: make(chan struct{})})
	config := filepath.Join(dir, "routes.hcl")
	writeFile(t, config, tailnetConfig(deadURL, filepath.Join(dir, "state"), keyFile, nil,
		tailnetRoute("radarr", app, "admin", "")+appRoute("app", app)))
	log := &syncLog{}
	gw := startTailnetGatewayLogging(t, config, newCertIssuer(t), log)
	if st, body := get(t, &http.Client{}, gw.addr, "app.example.com", "/"); st != 200 || body != "app" {
		t.Fatalf("cloudflare door with the tailnet down: %d %q", st, body)
	}
	if !slices.Contains(gw.Nodes().Running(), "radarr") {
		t.Fatalf("per-route node not kept for retry: %v", gw.Nodes().Running())
	}
	// The wait is said, once for the door (two nodes wait), naming the
	// control server.
	const waiting = "tailnet door waiting: the control server does not answer"
	logged := waitLog(t, log, waiting)
	if n := strings.Count(logged, waiting); n != 1 || !strings.Contains(logged, "control="+deadURL) {
		t.Errorf("the wait was said %d times, or without naming %s:\n%s", n, deadURL, logged)
	}
}

// A corrupt tailnet state file never keeps the Cloudflare door from
// serving: the node fails, logs, and retries in the background.
func TestCloudflareDoorServesWithCorruptTailnetState(t *testing.T) {
	control := startControl(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state", "gatehouse")
	os.MkdirAll(state, 0o700)
	os.WriteFile(filepath.Join(state, "tailscaled.state"), []byte("{this is not json"), 0o600)
	app := startBackend(t, &reloadBackend{name: "app", release: make(chan struct{})})
	config := filepath.Join(dir, "routes.hcl")
	// No key: the saved (corrupt) state alone turns the door on.
	writeFile(t, config, strings.Replace(tailnetConfig(control.HTTPTestServer.URL, filepath.Join(dir, "state"), "", []string{},
		appRoute("app", app)), `  auth_key_file    = ""`+"\n", "", 1))
	gw := startTailnetGateway(t, config, newCertIssuer(t))
	for range 3 {
		if st, body := get(t, &http.Client{}, gw.addr, "app.example.com", "/"); st != 200 || body != "app" {
			t.Fatalf("cloudflare door with corrupt tailnet state: %d %q", st, body)
		}
	}
}

// A tailnet without HTTPS certificates gets plain HTTP on :80, with the
// same identity rules, instead of a redirect to an HTTPS that cannot work.
func TestTailnetWithoutCertificatesServesHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tailnet nodes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	control := startControlWith(t, "")
	controlURL := control.HTTPTestServer.URL
	issuer := newCertIssuer(t)
	admin := startPeer(t, ctx, controlURL, "laptop", nil, issuer.pool())
	other := startPeer(t, ctx, controlURL, "phone", nil, issuer.pool())

	dir := t.TempDir()
	keyFile := writeAuthKey(t, dir)
	radarr := startBackend(t, identityBackend("radarr"))
	config := filepath.Join(dir, "routes.hcl")
	writeFile(t, config, tailnetConfig(controlURL, filepath.Join(dir, "state"), keyFile,
		[]string{admin.login}, tailnetRoute("radarr", radarr, "admin", "")))
	log := &syncLog{}
	startTailnetGatewayLogging(t, config, issuer, log)

	// Without MagicDNS, find the node by its tailnet address.
	ip := tailnettest.AddrOf(t, ctx, admin.s, "radarr")
	if a := admin.get(t, "http://"+ip+"/movies"); a.status != 200 || !strings.Contains(a.body, `"route":"radarr"`) {
		t.Fatalf("admin over plain HTTP: %d %s", a.status, a.body)
	}
	if a := other.get(t, "http://"+ip+"/movies"); a.status != 403 {
		t.Fatalf("other user over plain HTTP: %d", a.status)
	}
	// Both nodes (the shared one and radarr's) serve plain HTTP; that is
	// said once, and for this control server (not Tailscale's: no admin
	// console to turn certificates on).
	ip = tailnettest.AddrOf(t, ctx, admin.s, "gatehouse")
	admin.get(t, "http://"+ip+"/")
	logged := log.String()
	const notice = "gives this tailnet no HTTPS certificates (Headscale issues none)"
	if n := strings.Count(logged, notice); n != 1 || strings.Contains(logged, "admin console") {
		t.Errorf("the plain-HTTP notice was logged %d times (want once, for this control server):\n%s", n, logged)
	}
}

// Rate limits count per tailnet device, as the limits documentation says:
// one user's two devices have a bucket each. (The device name used to be
// overwritten by the user's display name, which made them one bucket.)
func TestTailnetLimitsPerDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tailnet nodes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	control := tailnettest.Control(t, "", func(c *testcontrol.Server) { c.AllNodesSameUser = true })
	controlURL := control.HTTPTestServer.URL
	issuer := newCertIssuer(t)
	laptop := startPeer(t, ctx, controlURL, "laptop", nil, issuer.pool())
	phone := startPeer(t, ctx, controlURL, "phone", nil, issuer.pool())
	if laptop.login == "" || laptop.login != phone.login {
		t.Fatalf("want one user with two devices, got %q and %q", laptop.login, phone.login)
	}

	dir := t.TempDir()
	keyFile := writeAuthKey(t, dir)
	backend := startBackend(t, identityBackend("radicale"))
	config := filepath.Join(dir, "routes.hcl")
	writeFile(t, config, tailnetConfig(controlURL, filepath.Join(dir, "state"), keyFile, nil, `
route "limited" {
  backend = "`+backend+`"
  tailnet {
    access = "members"
    host   = "radicale-limited"
    node   = false
  }
  limit {
    rate  = "1/h"
    burst = 1
  }
}
`))
	startTailnetGateway(t, config, issuer)
	ip := tailnettest.AddrOf(t, ctx, laptop.s, "gatehouse")
	limited := "http://" + ip + "/"
	get := func(p *peer) int {
		t.Helper()
		return p.get(t, limited, "Host", "radicale-limited").status
	}
	if got := get(laptop); got != 200 {
		t.Fatalf("the laptop's first request: %d", got)
	}
	if got := get(laptop); got != http.StatusTooManyRequests {
		t.Fatalf("the laptop's second request: %d, want 429", got)
	}
	if got := get(phone); got != 200 {
		t.Fatalf("the same user's phone: %d, want 200 (a bucket of its own)", got)
	}
}

// A route removed while gatehouse was stopped: at the next start its
// node's state is found, the node logs out of the control server and the
// state goes, as a reload would have done.
func TestTailnetLeftoverNodeLeavesAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tailnet nodes")
	}
	control := startControlWith(t, "")
	controlURL := control.HTTPTestServer.URL
	issuer := newCertIssuer(t)
	dir := t.TempDir()
	keyFile := writeAuthKey(t, dir)
	backend := startBackend(t, identityBackend("radarr"))
	config := filepath.Join(dir, "routes.hcl")
	state := filepath.Join(dir, "state")
	writeFile(t, config, tailnetConfig(controlURL, state, keyFile, nil, tailnetRoute("radarr", backend, "admin", "")))
	first := &syncLog{}
	gw := startTailnetGatewayLogging(t, config, issuer, first)
	waitLog(t, first, `msg="tailnet node up" node=radarr`)
	if err := gw.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(state, "radarr", "tailscaled.state")); err != nil {
		t.Fatalf("radarr's node left no state: %v", err)
	}

	writeFile(t, config, tailnetConfig(controlURL, state, keyFile, nil, ""))
	second := &syncLog{}
	gw = startTailnetGatewayLogging(t, config, issuer, second)
	logged := waitLog(t, second, "tailnet node logged out of the control server and its state removed")
	if !strings.Contains(logged, "state is left from a route that is gone") || !strings.Contains(logged, "node=radarr") {
		t.Errorf("the leftover is not named:\n%s", logged)
	}
	if _, err := os.Stat(filepath.Join(state, "radarr")); !os.IsNotExist(err) {
		t.Errorf("radarr's state directory is still there: %v", err)
	}
	if running := gw.Nodes().Running(); !slices.Equal(running, []string{"gatehouse"}) {
		t.Errorf("nodes after the start: %v", running)
	}
}
