package server

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/lan"
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
