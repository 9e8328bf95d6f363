package lan

// The LAN door's certificates against a real ACME server: pebble, in
// process, validating DNS-01 through its DNS test server (challtestsrv).
// Everything listens on loopback; certmagic's resolvers and pebble's DNS
// point only at the test's own DNS front.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letsencrypt/challtestsrv"
	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/libdns/libdns"
	"github.com/miekg/dns"

	"gatehouse/routes"
)

// acmeServer is pebble with its DNS: the ACME directory over HTTPS, the CA
// whose root signs the certificates, and the DNS front certmagic asks.
type acmeServer struct {
	dir      string         // ACME directory URL
	acmeTLS  *x509.CertPool // trusts the directory's HTTPS
	roots    *x509.CertPool // trusts the certificates pebble issues
	dns      string         // the DNS front, host:port (UDP)
	chall    *challtestsrv.ChallSrv
	httpSrv  *httptest.Server
	txtAdded chan string
}

// startACME runs pebble issuing certificates valid for validity (0:
// pebble's default of 90 days).
func startACME(t *testing.T, validity time.Duration) *acmeServer {
	t.Helper()
	// No random sleeps before validation, no bad-nonce rejections: the
	// test waits for the real work only.
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	t.Setenv("PEBBLE_AUTHZREUSE", "0")
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		logger = log.New(os.Stderr, "pebble ", 0)
	}

	challAddr := freeUDP(t)
	chall, err := challtestsrv.New(challtestsrv.Config{DNSAddrs: []string{challAddr}, Log: logger})
	if err != nil {
		t.Fatal(err)
	}
	go chall.Run()
	t.Cleanup(chall.Shutdown)
	front := startDNSFront(t, "example.com.", challAddr)

	store := db.NewMemoryStore()
	profiles := map[string]ca.Profile{"default": {Description: "test", ValidityPeriod: uint64(validity / time.Second)}}
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, profiles)
	validator := va.New(logger, 0, 0, false, front, store)
	w := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewTLSServer(w.Handler())
	t.Cleanup(srv.Close)

	a := &acmeServer{dir: srv.URL + wfe.DirectoryPath, dns: front, chall: chall, httpSrv: srv, txtAdded: make(chan string, 16)}
	a.acmeTLS = x509.NewCertPool()
	a.acmeTLS.AddCert(srv.Certificate())
	a.roots = x509.NewCertPool()
	a.roots.AddCert(authority.GetRootCert(0).Cert)
	return a
}

func freeUDP(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// startDNSFront answers SOA for zone itself (challtestsrv answers SOA with
// NOTIMP, and certmagic finds the zone by its SOA) and forwards every
// other question to upstream.
func startDNSFront(t *testing.T, zone, upstream string) string {
	t.Helper()
	// Pebble asks over TCP, certmagic over UDP: one port for both.
	var pc net.PacketConn
	var ln net.Listener
	for range 20 {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp", ln.Addr().String()); err == nil {
			break
		}
		ln.Close()
	}
	if pc == nil {
		t.Fatal("no loopback port free for both TCP and UDP")
	}
	client := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		if len(q.Question) == 1 && q.Question[0].Qtype == dns.TypeSOA {
			m := new(dns.Msg)
			m.SetReply(q)
			m.Authoritative = true
			if strings.EqualFold(q.Question[0].Name, zone) {
				m.Answer = append(m.Answer, &dns.SOA{
					Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
					Ns:  "ns." + zone, Mbox: "hostmaster." + zone, Serial: 1, Refresh: 60, Retry: 60, Expire: 600, Minttl: 1,
				})
			}
			_ = w.WriteMsg(m)
			return
		}
		in, _, err := client.Exchange(q, upstream)
		if err != nil {
			m := new(dns.Msg)
			m.SetRcode(q, dns.RcodeServerFailure)
			_ = w.WriteMsg(m)
			return
		}
		_ = w.WriteMsg(in)
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		go func() { _ = srv.ActivateAndServe() }()
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// challDNS is a libdns provider that writes the challenge's TXT records
// into challtestsrv, the DNS pebble validates against.
type challDNS struct{ a *acmeServer }

func (c challDNS) AppendRecords(_ context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	for _, r := range recs {
		rr := r.RR()
		name := libdns.AbsoluteName(rr.Name, zone)
		c.a.chall.AddDNSTXTRecord(name, rr.Data)
		select {
		case c.a.txtAdded <- name:
		default:
		}
	}
	return recs, nil
}

func (c challDNS) DeleteRecords(_ context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	for _, r := range recs {
		c.a.chall.DeleteDNSTXTRecord(libdns.AbsoluteName(r.RR().Name, zone))
	}
	return recs, nil
}

func testLog(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func lanConfig(dir, ca string) *routes.LANConfig {
	return &routes.LANConfig{
		Listen: []string{"127.0.0.1:443"}, Networks: routes.DefaultLANNetworks, StateDir: dir, ACMECA: ca,
		ACMEEmail: "admin@example.com", DNSTokenFile: filepath.Join(dir, "token"), Wildcard: true,
	}
}

// openDoor serves "hello" behind a LAN door on a loopback port with m's
// certificates.
func openDoor(t *testing.T, lc *routes.LANConfig, m *Manager) *Door {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(DoorOptions{
		Config: lc, Manager: m, Log: testLog(t), Listeners: []net.Listener{ln}, RedirectListeners: []net.Listener{},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello %s", r.Proto)
		}),
		NewServer: func(h http.Handler) *http.Server {
			return &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	d.Serve()
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	return d
}

// waitFor polls cond; the deadline is a hang guard, not a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fetch asks the door for https://<host>/ as a browser would: the
// certificate checked against roots for host, HTTP/2 when offered.
func fetch(t *testing.T, addr, host string, roots *x509.CertPool) (string, *x509.Certificate, error) {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: host},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		},
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get("https://" + host + "/")
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.TLS.PeerCertificates[0], nil
}

// TestWildcardIssuance obtains *.example.com from pebble through DNS-01,
// serves it over HTTP/2 to any name under the domain with a chain that
// verifies against pebble's root, keeps it in the state directory, and
// serves the stored certificate after a restart while the CA is down.
func TestWildcardIssuance(t *testing.T) {
	a := startACME(t, 0)
	dir := t.TempDir()
	lc := lanConfig(dir, a.dir)
	opts := ManagerOptions{Config: lc, Names: []string{"*.example.com"}, Log: testLog(t),
		DNS: challDNS{a}, Resolvers: []string{a.dns}, CARoots: a.acmeTLS}
	m := NewManager(opts)
	d := openDoor(t, lc, m)
	addr := d.Addrs()[0].String()

	// Before a certificate: the handshake fails, nothing is served.
	if _, _, err := fetch(t, addr, "photos.example.com", a.roots); err == nil {
		t.Fatal("the door answered before it had a certificate")
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the wildcard certificate", func() bool { return m.Status().Ready })
	if got := <-a.txtAdded; got != "_acme-challenge.example.com." {
		t.Errorf("challenge record at %q, want _acme-challenge.example.com.", got)
	}
	for _, host := range []string{"photos.example.com", "radarr.example.com"} {
		body, cert, err := fetch(t, addr, host, a.roots)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if body != "hello HTTP/2.0" {
			t.Errorf("%s answered %q, want hello over HTTP/2", host, body)
		}
		if len(cert.DNSNames) != 1 || cert.DNSNames[0] != "*.example.com" {
			t.Errorf("certificate for %v, want *.example.com", cert.DNSNames)
		}
	}
	// A name the certificate does not cover gets no certificate at all.
	if _, _, err := fetch(t, addr, "a.b.example.com", a.roots); err == nil {
		t.Error("a.b.example.com was served with the wildcard certificate")
	}
	st := m.Status()
	if st.Error != "" || st.Expires.IsZero() || len(st.Problems(WarnBefore)) != 0 {
		t.Errorf("status after issuance: %+v, problems %v", st, st.Problems(WarnBefore))
	}
	stored, _ := filepath.Glob(filepath.Join(dir, "certmagic", "certificates", "*", "wildcard_.example.com", "wildcard_.example.com.crt"))
	if len(stored) != 1 {
		t.Fatalf("stored certificate: %v", stored)
	}
	m.Stop()
	d.Shutdown(context.Background())

	// Restart with the CA gone: the stored certificate is served.
	a.httpSrv.Close()
	m2 := NewManager(opts)
	t.Cleanup(m2.Stop)
	d2 := openDoor(t, lc, m2)
	if err := m2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stored certificate", func() bool { return m2.Status().Ready })
	body, cert, err := fetch(t, d2.Addrs()[0].String(), "photos.example.com", a.roots)
	if err != nil || body != "hello HTTP/2.0" || cert.DNSNames[0] != "*.example.com" {
		t.Fatalf("after restart with the CA down: %q %v", body, err)
	}
}

// TestRenewal: a short-lived certificate is renewed in the background and
// the door serves the new one, without a restart.
func TestRenewal(t *testing.T) {
	a := startACME(t, 30*time.Second)
	lc := lanConfig(t.TempDir(), a.dir)
	m := NewManager(ManagerOptions{Config: lc, Names: []string{"*.example.com"}, Log: testLog(t),
		DNS: challDNS{a}, Resolvers: []string{a.dns}, CARoots: a.acmeTLS, RenewCheckInterval: time.Second})
	t.Cleanup(m.Stop)
	d := openDoor(t, lc, m)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first certificate", func() bool { return m.Status().Ready })
	_, first, err := fetch(t, d.Addrs()[0].String(), "photos.example.com", a.roots)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a renewed certificate", func() bool {
		_, c, err := fetch(t, d.Addrs()[0].String(), "photos.example.com", a.roots)
		return err == nil && c.SerialNumber.Cmp(first.SerialNumber) != 0
	})
}

// fakeCloudflare speaks the record endpoints of Cloudflare's DNS API
// (https://developers.cloudflare.com/api/resources/dns/subresources/records/)
// as libdns/cloudflare calls them (its client.go): zone lookup by name,
// create, list and delete TXT records. Records land in challtestsrv.
type fakeCloudflare struct {
	a     *acmeServer
	token string
	mu    sync.Mutex
	recs  map[string]cfRecord
	calls []string
}

type cfRecord struct {
	ID      string `json:"id"`
	ZoneID  string `json:"zone_id"`
	Type    string `json:"type"`
	Name    string `json:"name"`
	Content string `json:"content"`
	TTL     int    `json:"ttl,omitempty"`
}

func (f *fakeCloudflare) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	reply := func(code int, result any, errs ...string) {
		type cfErr struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		out := struct {
			Success bool    `json:"success"`
			Errors  []cfErr `json:"errors"`
			Result  any     `json:"result"`
		}{Success: len(errs) == 0, Errors: []cfErr{}, Result: result}
		for _, e := range errs {
			out.Errors = append(out.Errors, cfErr{Code: 10000, Message: e})
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(out)
	}
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		reply(http.StatusForbidden, nil, "Authentication error")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/client/v4")
	switch {
	case r.Method == "GET" && path == "/zones":
		// libdns passes the zone as an FQDN ("example.com."), which the
		// API takes as the zone's name.
		if strings.TrimSuffix(r.URL.Query().Get("name"), ".") != "example.com" {
			reply(200, []any{})
			return
		}
		reply(200, []map[string]string{{"id": "zone1", "name": "example.com"}})
	case r.Method == "POST" && path == "/zones/zone1/dns_records":
		var rec cfRecord
		if err := json.NewDecoder(r.Body).Decode(&rec); err != nil || rec.Type != "TXT" {
			reply(400, nil, "bad record")
			return
		}
		// The API takes a name relative to the zone or in full, and
		// stores it in full; TXT content comes quoted.
		if rec.Name == "@" {
			rec.Name = "example.com"
		} else if n := strings.TrimSuffix(rec.Name, "."); n != "example.com" && !strings.HasSuffix(n, ".example.com") {
			rec.Name = n + ".example.com"
		}
		value, err := strconv.Unquote(rec.Content)
		if err != nil {
			value = rec.Content
		}
		rec.ID, rec.ZoneID = fmt.Sprintf("rec%d", len(f.recs)+1), "zone1"
		f.recs[rec.ID] = rec
		f.a.chall.AddDNSTXTRecord(rec.Name, value)
		reply(200, rec)
	case r.Method == "GET" && path == "/zones/zone1/dns_records":
		var out []cfRecord
		for _, rec := range f.recs {
			if strings.TrimSuffix(rec.Name, ".") == strings.TrimSuffix(r.URL.Query().Get("name"), ".") && rec.Type == r.URL.Query().Get("type") {
				out = append(out, rec)
			}
		}
		reply(200, out)
	case r.Method == "DELETE" && strings.HasPrefix(path, "/zones/zone1/dns_records/"):
		id := strings.TrimPrefix(path, "/zones/zone1/dns_records/")
		rec, ok := f.recs[id]
		if !ok {
			reply(404, nil, "Record does not exist")
			return
		}
		delete(f.recs, id)
		f.a.chall.DeleteDNSTXTRecord(rec.Name)
		reply(200, map[string]string{"id": id})
	default:
		reply(404, nil, "no route "+r.Method+" "+path)
	}
}

// toLoopback sends the Cloudflare provider's requests, addressed to
// api.cloudflare.com, to a loopback server instead.
type toLoopback struct {
	base *url.URL
	c    *http.Client
}

func (l toLoopback) Do(r *http.Request) (*http.Response, error) {
	if r.URL.Host != "api.cloudflare.com" {
		return nil, fmt.Errorf("the test's Cloudflare client refuses %s", r.URL)
	}
	r.URL.Scheme, r.URL.Host = l.base.Scheme, l.base.Host
	return l.c.Do(r)
}

// TestCloudflareDNS: issuance through libdns/cloudflare against a server
// speaking Cloudflare's API, with the token from the token file; a wrong
// token leaves the door without a certificate and says so, naming the
// token file and the API's error.
func TestCloudflareDNS(t *testing.T) {
	a := startACME(t, 0)
	cf := &fakeCloudflare{a: a, token: "good-token", recs: map[string]cfRecord{}}
	api := httptest.NewServer(cf)
	t.Cleanup(api.Close)
	base, _ := url.Parse(api.URL)

	t.Run("wrong token", func(t *testing.T) {
		dir := t.TempDir()
		lc := lanConfig(dir, a.dir)
		if err := os.WriteFile(lc.DNSTokenFile, []byte("stale-token\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		m := NewManager(ManagerOptions{Config: lc, Names: []string{"*.example.com"}, Log: testLog(t),
			CloudflareClient: toLoopback{base, api.Client()}, Resolvers: []string{a.dns}, CARoots: a.acmeTLS})
		t.Cleanup(m.Stop)
		d := openDoor(t, lc, m)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel) // ends the retries
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the failure", func() bool { return m.Status().Failures > 0 })
		st := m.Status()
		for _, want := range []string{lc.DNSTokenFile, "Authentication error", "403"} {
			if !strings.Contains(st.Error, want) {
				t.Errorf("status error %q does not name %q", st.Error, want)
			}
		}
		if strings.Contains(st.Error, "stale-token") {
			t.Errorf("the status shows the token: %q", st.Error)
		}
		if st.Ready || len(st.Problems(WarnBefore)) != 1 || !strings.Contains(st.Problems(WarnBefore)[0], "refuses TLS") {
			t.Errorf("status %+v, problems %v", st, st.Problems(WarnBefore))
		}
		if _, _, err := fetch(t, d.Addrs()[0].String(), "photos.example.com", a.roots); err == nil {
			t.Error("the door answered without a valid certificate")
		}
	})

	t.Run("good token", func(t *testing.T) {
		dir := t.TempDir()
		lc := lanConfig(dir, a.dir)
		if err := os.WriteFile(lc.DNSTokenFile, []byte("good-token\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		m := NewManager(ManagerOptions{Config: lc, Names: []string{"*.example.com"}, Log: testLog(t),
			CloudflareClient: toLoopback{base, api.Client()}, Resolvers: []string{a.dns}, CARoots: a.acmeTLS})
		t.Cleanup(m.Stop)
		d := openDoor(t, lc, m)
		if err := m.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the certificate", func() bool { return m.Status().Ready })
		if _, cert, err := fetch(t, d.Addrs()[0].String(), "photos.example.com", a.roots); err != nil || cert.DNSNames[0] != "*.example.com" {
			t.Fatalf("after issuance through the Cloudflare API: %v", err)
		}
		// The challenge record was created, then cleaned up.
		waitFor(t, "the record's deletion", func() bool {
			cf.mu.Lock()
			defer cf.mu.Unlock()
			return len(cf.recs) == 0 && strings.Contains(strings.Join(cf.calls, ","), "DELETE /client/v4/zones/zone1/dns_records/")
		})
		cf.mu.Lock()
		calls := strings.Join(cf.calls, ",")
		cf.mu.Unlock()
		if !strings.Contains(calls, "POST /client/v4/zones/zone1/dns_records") {
			t.Errorf("API calls %s: no record created", calls)
		}
	})
}

// TestFixedTokenRecovers: with a wrong DNS API token the door has no
// certificate and retries; the admin fixes the token file, with neither a
// reload nor a restart, and the next retry reads it again: the
// certificate is issued and served.
func TestFixedTokenRecovers(t *testing.T) {
	a := startACME(t, 0)
	cf := &fakeCloudflare{a: a, token: "good-token", recs: map[string]cfRecord{}}
	api := httptest.NewServer(cf)
	t.Cleanup(api.Close)
	base, _ := url.Parse(api.URL)
	dir := t.TempDir()
	lc := lanConfig(dir, a.dir)
	if err := os.WriteFile(lc.DNSTokenFile, []byte("stale-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := NewManager(ManagerOptions{Config: lc, Names: []string{"*.example.com"}, Log: testLog(t),
		CloudflareClient: toLoopback{base, api.Client()}, Resolvers: []string{a.dns}, CARoots: a.acmeTLS,
		RetryIntervals: []time.Duration{100 * time.Millisecond}})
	t.Cleanup(m.Stop)
	d := openDoor(t, lc, m)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Two failures: the door is retrying, not waiting for a restart.
	waitFor(t, "a retry with the wrong token", func() bool { return m.Status().Failures >= 2 })
	if st := m.Status(); st.Ready || !strings.Contains(st.Error, "Authentication error") {
		t.Fatalf("with the wrong token: %+v", st)
	}
	if _, _, err := fetch(t, d.Addrs()[0].String(), "photos.example.com", a.roots); err == nil {
		t.Fatal("the door answered without a valid certificate")
	}

	if err := os.WriteFile(lc.DNSTokenFile, []byte("good-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the certificate after the token was fixed", func() bool { return m.Status().Ready })
	body, cert, err := fetch(t, d.Addrs()[0].String(), "photos.example.com", a.roots)
	if err != nil || body != "hello HTTP/2.0" || cert.DNSNames[0] != "*.example.com" {
		t.Fatalf("after the token was fixed: %q %v", body, err)
	}
	if st := m.Status(); st.Error != "" || len(st.Problems(WarnBefore)) != 0 {
		t.Errorf("status after recovery: %+v", st)
	}
}
