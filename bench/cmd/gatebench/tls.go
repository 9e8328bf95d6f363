package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
)

// The TLS scenario: gatehouse's LAN door, Caddy and nginx on HTTPS with
// one certificate, which gatebench makes itself: a test CA of its own and
// a wildcard certificate *.bench.test signed by it, ECDSA P-256 (the key
// type certmagic asks Let's Encrypt for).
//
// The LAN door gets its certificate the way it keeps one between starts:
// stored in its state directory's certmagic storage, under the issuer key
// of its acme_ca. The stored certificate is valid for 90 days, so
// certmagic serves it at once and never needs the CA, which is a refused
// loopback port (lanCA): nothing of ACME runs during the bench.

// tlsHost is the name every TLS target is asked for (SNI and Host).
const tlsHost = "tls." + benchDomain

// lanCA is the LAN door's acme_ca: never reached, nothing listens there.
const lanCA = "https://127.0.0.1:1/directory"

// benchCert is the bench's certificate and the CA that signed it.
type benchCert struct {
	certFile, keyFile, caFile string
	certPEM, keyPEM           []byte
	leaf                      []byte // DER, what every target must serve
	roots                     *x509.CertPool
}

// lanSetup is what the gatehouse config needs for the LAN door.
type lanSetup struct {
	listen, backend int
	stateDir        string
}

func makeBenchCert(dir string) (*benchCert, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gatebench test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "*." + benchDomain},
		DNSNames:  []string{"*." + benchDomain},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leaf, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	c := &benchCert{
		certFile: filepath.Join(dir, "tls-cert.pem"), keyFile: filepath.Join(dir, "tls-key.pem"), caFile: filepath.Join(dir, "tls-ca.pem"),
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		leaf:    leaf, roots: x509.NewCertPool(),
	}
	c.roots.AddCert(ca)
	for f, b := range map[string][]byte{c.certFile: c.certPEM, c.keyFile: c.keyPEM,
		c.caFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// seedLAN stores the certificate where the LAN door's certmagic looks for
// the wildcard *.bench.test of acme_ca: as if an earlier start had
// obtained it.
func (c *benchCert) seedLAN(stateDir string) error {
	storage := &certmagic.FileStorage{Path: filepath.Join(stateDir, "certmagic")}
	issuer := (&certmagic.ACMEIssuer{CA: lanCA}).IssuerKey()
	name := "*." + benchDomain
	meta, _ := json.Marshal(map[string]any{"sans": []string{name}})
	ctx := context.Background()
	for key, b := range map[string][]byte{
		certmagic.StorageKeys.SiteCert(issuer, name):       c.certPEM,
		certmagic.StorageKeys.SitePrivateKey(issuer, name): c.keyPEM,
		certmagic.StorageKeys.SiteMeta(issuer, name):       meta,
	} {
		if err := storage.Store(ctx, key, b); err != nil {
			return fmt.Errorf("seeding the LAN door's certificate: %w", err)
		}
	}
	return nil
}

// wrkResolveScript makes wrk connect to 127.0.0.1 whatever the URL's
// host, so the URL can carry the name wrk sends as SNI.
const wrkResolveScript = `-- gatebench: connect to loopback, keep the URL's host for SNI.
function wrk.resolve(host, service)
  wrk.addrs = wrk.lookup("127.0.0.1", service)
end
`

// --- the handshake load ------------------------------------------------------

// loadHandshake opens new TLS connections back to back from conc
// goroutines for d: a full handshake each (no session cache, so no
// resumption), then one GET /1k with Connection: close, answer checked.
// The certificate served must be the bench's (compared byte for byte;
// its chain is not verified again each time, so the client spends its
// CPU on the handshake itself). curves "x25519" offers only X25519;
// "default" offers what Go offers (X25519MLKEM768 first, as current
// browsers do).
func loadHandshake(addr, host string, d time.Duration, conc int, certFile, curves string) loadResult {
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		return loadResult{Err: err.Error(), Bad: 1}
	}
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		return loadResult{Err: "no certificate in " + certFile, Bad: 1}
	}
	want := blk.Bytes
	cfg := &tls.Config{
		ServerName: host, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12,
		InsecureSkipVerify: true, // the leaf is compared instead, below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, want) {
				return errors.New("the target served another certificate than the bench's")
			}
			return nil
		},
	}
	switch curves {
	case "x25519":
		cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	case "default":
	default:
		return loadResult{Err: "unknown -curves " + curves, Bad: 1}
	}
	req := []byte("GET /1k HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n")
	var count, bad atomic.Int64
	var mu sync.Mutex
	var firstErr, info string
	fail := func(err error) {
		bad.Add(1)
		mu.Lock()
		if firstErr == "" {
			firstErr = err.Error()
		}
		mu.Unlock()
	}
	one := func() error {
		raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		c := tls.Client(raw, cfg)
		if err := c.Handshake(); err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
		if c.ConnectionState().DidResume {
			return errors.New("the session was resumed")
		}
		if _, err := c.Write(req); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 || len(b) != 1024 || !matchesPattern(b, 0) {
			return fmt.Errorf("GET /1k answered %s with %d bytes", resp.Status, len(b))
		}
		mu.Lock()
		if info == "" {
			cs := c.ConnectionState()
			info = tls.VersionName(cs.Version) + ", " + cs.CurveID.String() + ", " + tls.CipherSuiteName(cs.CipherSuite)
		}
		mu.Unlock()
		return nil
	}
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if err := one(); err != nil {
					fail(err)
					if bad.Load() > 100 {
						return
					}
					continue
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	r := loadResult{OK: bad.Load() == 0 && count.Load() > 0, Seconds: time.Since(start).Seconds(),
		Count: int(count.Load()), Bad: int(bad.Load()), Err: firstErr, Info: info}
	if r.Count == 0 && r.Err == "" {
		r.Err = "no connection completed"
	}
	return r
}

// --- the scenario ------------------------------------------------------------

// scenarioTLS: the LAN door, Caddy and nginx on HTTPS with the same
// certificate. GET /1k over 32 keep-alive connections (wrk, as the GET
// scenario) and new connections back to back, each a full handshake.
func (m *modeRun) scenarioTLS() {
	targets := m.up(tLAN, tCaddyTLS, tNginxTLS)
	if len(targets) == 0 {
		return
	}
	hsDur := max(time.Duration(m.o.wrkDur)*time.Second, time.Second)
	logf("TLS: %d targets, HTTPS GET /1k (wrk -c32 %ds) and new handshakes (%s each, X25519 and Go's default groups), %d rounds",
		len(targets), m.o.wrkDur, hsDur, m.o.rounds)
	hs := func(curves string, d time.Duration) []string {
		return []string{"-d", d.String(), "-c", "8", "-cert", m.o.cert.certFile, "-curves", curves}
	}
	for _, t := range targets {
		if _, err := m.wrk(t, "/1k", 1); err != nil {
			m.res.note("warm-up %s: %v", t.label, err)
		}
		m.loadChecked(t, "handshake", hs("x25519", 300*time.Millisecond)...)
	}
	for round := 0; round < m.o.rounds; round++ {
		for _, i := range m.shuffle(len(targets)) {
			t := targets[i]
			g, _, ok := cleanest(m, t.label+" HTTPS /1k", func() (*getRun, float64, bool) {
				g, err := m.getRun(t, "/1k")
				if err != nil {
					m.res.note("%s /1k: %v", t.label, err)
					m.res.errs[t.key]++
					return nil, 0, false
				}
				return g, g.foreign, true
			})
			if ok {
				m.res.put("tlsrps", t.key, round, g.wrk.rps)
				m.res.put("tlscpu", t.key, round, g.cpuPerReq)
				m.res.put("tlsutil", t.key, round, g.util)
				m.res.foreign["tls"] = append(m.res.foreign["tls"], g.foreign*100)
				if bad := g.wrk.non2xx + g.wrk.sockErrs; bad > 0 {
					m.res.errs[t.key] += int(bad)
					m.res.note("%s HTTPS /1k: %d non-2xx responses and %d socket errors (wrk)", t.label, g.wrk.non2xx, g.wrk.sockErrs)
				}
				if lost := g.wrk.requests - g.backendReqs; lost > 0 {
					m.res.errs[t.key] += int(lost)
					m.res.note("%s HTTPS /1k: %d of %d requests answered without reaching the backend", t.label, lost, g.wrk.requests)
				}
			}
			for _, v := range []struct{ curves, metric string }{{"x25519", "hs"}, {"default", "hspq"}} {
				r, sr, ok := m.loadMeasured(t, "handshake", hs(v.curves, hsDur)...)
				if ok && r.Count > 0 {
					m.res.put(v.metric, t.key, round, float64(r.Count)/r.Seconds)
					m.res.put(v.metric+"cpu", t.key, round, sr.targetTicks*1e6/clkTck/float64(r.Count))
					m.res.put(v.metric+"util", t.key, round, sr.util)
					m.res.tlsInfo[v.metric+"/"+t.key] = r.Info
				}
			}
			logf("  round %d %-28s %8.0f rps %6.1f µs/req  %6.0f handshakes/s %6.0f µs each (X25519)  %6.0f/s (default groups)", round+1, t.label,
				at(m.res.values["tlsrps"][t.key], round), at(m.res.values["tlscpu"][t.key], round),
				at(m.res.values["hs"][t.key], round), at(m.res.values["hscpu"][t.key], round), at(m.res.values["hspq"][t.key], round))
		}
	}
}

// probeTLS is probe over HTTPS: the chain verified against the bench's
// CA, for the name every TLS target is asked for.
func probeTLS(t *target, roots *x509.CertPool) error {
	d := &net.Dialer{}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", t.addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: roots},
	}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + t.host + "/1k")
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(b) != 1024 || !matchesPattern(b, 0) {
		return fmt.Errorf("GET https://%s/1k answered %s with %d bytes", t.host, resp.Status, len(b))
	}
	return nil
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}
