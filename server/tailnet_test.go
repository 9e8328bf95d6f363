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

// startTailnetGateway runs a gateway whose tailnet nodes take their
// certificates from issuer.
func startTailnetGateway(t testing.TB, configPath string, issuer *certIssuer) *testServer {
	t.Helper()
	return startServer(t, configPath, Options{
		TailnetStarted: func(name string, s *tsnet.Server) {
			tsnet.TestHooks.LocalBackend(s).ForTest().ConfigureCerts(issuer.getCert)
		},
	})
}

// The tailnet door, end to end over real WireGuard and real TLS: admins by
// login, tag and grant reach an admin route; another user gets a 403 there
// and a 200 on a members route; spoofed identity headers change nothing;
// the admin route does not exist on the Cloudflare door; a per-route node
// goes away with its route.
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
	keyFile := filepath.Join(dir, "authkey")
	os.WriteFile(keyFile, []byte("tskey-test\n"), 0o600)
	radarr := startBackend(t, identityBackend("radarr"))
	radicale := startBackend(t, identityBackend("radicale"))
	routesHCL := tailnetRoute("radarr", radarr, "admin", "") +
		tailnetRoute("radicale", radicale, "members", `identity_headers = ["Tailscale-User-Login", "Remote-User"]`)
	config := filepath.Join(dir, "routes.hcl")
	writeFile(t, config, tailnetConfig(controlURL, filepath.Join(dir, "state"), keyFile,
		[]string{admin.login, "tag:admin-laptop"}, routesHCL))
	gw := startTailnetGateway(t, config, issuer)

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
		if a.status != 403 || !strings.Contains(a.body, family.login) {
			t.Fatalf("family on radarr: %d %s (want 403 naming %s)", a.status, a.body, family.login)
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
	keyFile := filepath.Join(dir, "authkey")
	os.WriteFile(keyFile, []byte("tskey-test\n"), 0o600)
	app := startBackend(t, &reloadBackend{name: "app", release: make(chan struct{})})
	config := filepath.Join(dir, "routes.hcl")
	writeFile(t, config, tailnetConfig(deadURL, filepath.Join(dir, "state"), keyFile, nil,
		tailnetRoute("radarr", app, "admin", "")+appRoute("app", app)))
	gw := startTailnetGateway(t, config, newCertIssuer(t))
	if st, body := get(t, &http.Client{}, gw.addr, "app.example.com", "/"); st != 200 || body != "app" {
		t.Fatalf("cloudflare door with the tailnet down: %d %q", st, body)
	}
	if !slices.Contains(gw.Nodes().Running(), "radarr") {
		t.Fatalf("per-route node not kept for retry: %v", gw.Nodes().Running())
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
	keyFile := filepath.Join(dir, "authkey")
	os.WriteFile(keyFile, []byte("tskey-test\n"), 0o600)
	radarr := startBackend(t, identityBackend("radarr"))
	config := filepath.Join(dir, "routes.hcl")
	writeFile(t, config, tailnetConfig(controlURL, filepath.Join(dir, "state"), keyFile,
		[]string{admin.login}, tailnetRoute("radarr", radarr, "admin", "")))
	gw := startTailnetGateway(t, config, issuer)
	_ = gw

	// Without MagicDNS, find the node by its tailnet address.
	ip := tailnettest.AddrOf(t, ctx, admin.s, "radarr")
	if a := admin.get(t, "http://"+ip+"/movies"); a.status != 200 || !strings.Contains(a.body, `"route":"radarr"`) {
		t.Fatalf("admin over plain HTTP: %d %s", a.status, a.body)
	}
	if a := other.get(t, "http://"+ip+"/movies"); a.status != 403 {
		t.Fatalf("other user over plain HTTP: %d", a.status)
	}
}
