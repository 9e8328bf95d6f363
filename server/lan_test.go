package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"gatehouse/lan"
	"gatehouse/tailnet/tailnettest"
)

// lanTable is a LAN door whose CA never answers (a refused loopback port):
// the certificate cannot be had.
func lanTable(backend, networks string) string {
	return tableSource(`
lan {
  listen         = ["127.0.0.1:8443"]
  networks       = [`+networks+`]
  state_dir      = "lanstate"
  acme_ca        = "https://127.0.0.1:1/directory"
  dns_token_file = "token"
}
`) + appRoute("photos", backend) + `
route "home" {
  backend = "` + backend + `"
  lan {
    host   = "home"
    access = "app"
  }
}
`
}

// Without a certificate the LAN door refuses TLS and says why (log,
// metrics, the status `gatehouse check` reads), while the Cloudflare door
// serves as ever.
func TestLANDoorWithoutCertificate(t *testing.T) {
	backend := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "token"), "t0ken\n")
	config := filepath.Join(dir, "routes.hcl")
	writeFile(t, config, lanTable(backend, `"127.0.0.0/8"`))
	log := &syncLog{}
	g := startServer(t, config, Options{Log: slog.New(slog.NewTextHandler(log, nil))})

	if code, body := get(t, &http.Client{}, g.addr, "photos.example.com", "/"); code != 200 || body != "ok" {
		t.Fatalf("cloudflare door: %d %q", code, body)
	}
	conn, err := tls.Dial("tcp", g.lanAddr, &tls.Config{ServerName: "home.example.com", InsecureSkipVerify: true})
	if err == nil {
		conn.Close()
		t.Fatal("the LAN door completed a handshake without a certificate")
	}
	waitUntil(t, "the failure in the log", func() bool {
		return strings.Contains(log.String(), "no LAN certificate yet") && strings.Contains(log.String(), "127.0.0.1:1")
	})
	_, metrics := get(t, &http.Client{}, g.metricsAddr, "", "/metrics")
	for _, want := range []string{"gatehouse_lan_certificate_ready 0", "gatehouse_lan_certificate_failures_total 1"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if err := g.stop(); err != nil {
		t.Fatal(err)
	}
	problems := strings.Join(lan.Check(g.opt.Config.LAN), "\n")
	if !strings.Contains(problems, "no valid certificate for [*.example.com]") || !strings.Contains(problems, "127.0.0.1:1") {
		t.Errorf("gatehouse check says:\n%s", problems)
	}
}

// A stored certificate close to expiry whose renewal fails (the CA cannot
// be reached) is served until it expires, and is a warning with its date
// in the log, in the metrics and in `gatehouse check`.
func TestLANCertificateCloseToExpiryWarns(t *testing.T) {
	backend := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "token"), "t0ken\n")
	config := filepath.Join(dir, "routes.hcl")
	writeFile(t, config, lanTable(backend, `"127.0.0.0/8"`))
	// Issued 80 days ago, 3 days left: due for renewal, and within
	// lan.WarnBefore of its end.
	ca := tailnettest.NewCA(t)
	certPEM, keyPEM, err := ca.Issue(7, "*.example.com", time.Now().Add(-80*24*time.Hour), time.Now().Add(3*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	storeCertificate(t, filepath.Join(dir, "lanstate"), "https://127.0.0.1:1/directory", "*.example.com", certPEM, keyPEM)
	log := &syncLog{}
	g := startServer(t, config, Options{Log: slog.New(slog.NewTextHandler(log, nil))})

	date := leaf.NotAfter.UTC().Format(time.RFC3339)
	waitUntil(t, "the failed renewal in the log", func() bool {
		for _, l := range strings.Split(log.String(), "\n") {
			if strings.Contains(l, "level=WARN") && strings.Contains(l, "renewal failed") && strings.Contains(l, "expires="+date) {
				return true
			}
		}
		return false
	})
	// The old certificate is still served, and verifies.
	conn, err := tls.Dial("tcp", g.lanAddr, &tls.Config{ServerName: "home.example.com", RootCAs: ca.Pool()})
	if err != nil {
		t.Fatalf("the LAN door no longer serves the valid certificate: %v", err)
	}
	if got := conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != 7 {
		t.Errorf("served certificate %d, want the stored one", got)
	}
	conn.Close()
	_, metrics := get(t, &http.Client{}, g.metricsAddr, "", "/metrics")
	for _, want := range []string{"gatehouse_lan_certificate_ready 1", "gatehouse_lan_certificate_renewal_failing 1"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if got := metricValue(metrics, "gatehouse_lan_certificate_expiry_timestamp_seconds"); got != float64(leaf.NotAfter.Unix()) {
		t.Errorf("expiry metric %v, want %d", got, leaf.NotAfter.Unix())
	}
	if err := g.stop(); err != nil {
		t.Fatal(err)
	}
	check := strings.Join(lan.Check(g.opt.Config.LAN), "\n")
	if !strings.Contains(check, "lan: the certificate expires on "+date+" and cannot be renewed") || !strings.Contains(check, "127.0.0.1:1") {
		t.Errorf("gatehouse check says:\n%s", check)
	}
}

// storeCertificate puts a certificate where the LAN door's certmagic
// storage keeps those of the ACME directory ca, as if obtained earlier.
func storeCertificate(t *testing.T, stateDir, ca, name string, certPEM, keyPEM []byte) {
	t.Helper()
	issuer := certmagic.NewACMEIssuer(&certmagic.Config{}, certmagic.ACMEIssuer{CA: ca}).IssuerKey()
	storage := &certmagic.FileStorage{Path: filepath.Join(stateDir, "certmagic")}
	for key, value := range map[string][]byte{
		certmagic.StorageKeys.SiteCert(issuer, name):       certPEM,
		certmagic.StorageKeys.SitePrivateKey(issuer, name): keyPEM,
		certmagic.StorageKeys.SiteMeta(issuer, name):       []byte(`{"sans":["` + name + `"]}`),
	} {
		if err := storage.Store(context.Background(), key, value); err != nil {
			t.Fatal(err)
		}
	}
}

// metricValue is the value of an unlabelled metric in Prometheus' text
// format; -1 when it is absent.
func metricValue(metrics, name string) float64 {
	for _, l := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f
			}
		}
	}
	return -1
}

// A client outside lan.networks is refused before TLS: the connection is
// closed without a byte.
func TestLANDoorRefusesOtherNetworks(t *testing.T) {
	backend := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "token"), "t0ken\n")
	config := filepath.Join(dir, "routes.hcl")
	// Loopback is not among them, so the test's own client is outside.
	writeFile(t, config, lanTable(backend, `"192.168.0.0/16"`))
	g := startServer(t, config, Options{})
	c, err := net.Dial("tcp", g.lanAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second)) // hang guard
	// A ClientHello's first bytes; the door must not answer them.
	_, _ = c.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x05})
	b, err := io.ReadAll(c)
	if len(b) != 0 || err != nil && !strings.Contains(err.Error(), "reset") {
		t.Errorf("read %d bytes (%v) from a refused client, want the connection closed", len(b), err)
	}
	_, metrics := get(t, &http.Client{}, g.metricsAddr, "", "/metrics")
	if !strings.Contains(metrics, "gatehouse_lan_refused_total 1") {
		t.Errorf("metrics do not count the refusal")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // hang guard
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
