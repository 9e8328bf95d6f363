package tailnet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"tailscale.com/client/local"
)

// certCache keeps a node's tailnet certificate in memory and in the node's
// state directory (through certmagic's file storage, which writes
// atomically and locks across processes), so a restart serves the stored
// certificate at once and a handshake never waits for the control server
// after the first certificate exists. Renewal runs in the background ahead
// of expiry.
//
// certmagic's own issuance is not used: its Issuer receives a CSR for a key
// certmagic made, but a tailnet certificate comes from tailscaled with
// tailscaled's key, so certmagic could only wrap it as a Manager, which it
// does not persist.
type certCache struct {
	lc      *local.Client
	domain  string
	storage *certmagic.FileStorage
	log     *slog.Logger

	cur   atomic.Pointer[tls.Certificate]
	fetch sync.Mutex
}

func newCertCache(lc *local.Client, domain, dir string, log *slog.Logger) *certCache {
	return &certCache{lc: lc, domain: domain, storage: &certmagic.FileStorage{Path: dir}, log: log}
}

func (c *certCache) keys() (string, string) {
	return "tailnet/" + c.domain + ".crt", "tailnet/" + c.domain + ".key"
}

// warm loads the stored certificate, if it is still valid, so the first
// handshake after a restart needs nothing from tailscaled.
func (c *certCache) warm(ctx context.Context) {
	ck, kk := c.keys()
	certPEM, err1 := c.storage.Load(ctx, ck)
	keyPEM, err2 := c.storage.Load(ctx, kk)
	if err1 != nil || err2 != nil {
		return
	}
	cert, err := parsePair(certPEM, keyPEM)
	if err != nil || time.Now().After(cert.Leaf.NotAfter) {
		return
	}
	c.cur.Store(cert)
	c.log.Debug("tailnet certificate loaded from the state directory", "domain", c.domain, "expires", cert.Leaf.NotAfter)
}

func parsePair(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &cert, nil
}

// refresh asks tailscaled for the certificate (tailscaled renews it ahead
// of expiry) and stores it.
func (c *certCache) refresh(ctx context.Context) (*tls.Certificate, error) {
	c.fetch.Lock()
	defer c.fetch.Unlock()
	certPEM, keyPEM, err := c.lc.CertPair(ctx, c.domain)
	if err != nil {
		return nil, fmt.Errorf("tailnet certificate for %s: %w", c.domain, err)
	}
	cert, err := parsePair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tailnet certificate for %s: %w", c.domain, err)
	}
	ck, kk := c.keys()
	if err := errors.Join(c.storage.Store(ctx, ck, certPEM), c.storage.Store(ctx, kk, keyPEM)); err != nil {
		c.log.Warn("could not store the tailnet certificate; it will be fetched again after a restart", "err", err)
	}
	c.cur.Store(cert)
	return cert, nil
}

func (c *certCache) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if cert := c.cur.Load(); cert != nil {
		return cert, nil
	}
	// Only the very first handshake of a new node waits for issuance.
	return c.refresh(hello.Context())
}

// renewLoop refreshes the certificate once a third of its lifetime is
// left, and at least twice a day.
func (c *certCache) renewLoop(ctx context.Context) {
	for {
		wait := time.Duration(0) // no certificate yet: fetch now
		if cert := c.cur.Load(); cert != nil {
			life := cert.Leaf.NotAfter.Sub(cert.Leaf.NotBefore)
			renewAt := cert.Leaf.NotAfter.Add(-life / 3)
			wait = min(12*time.Hour, max(time.Until(renewAt), time.Minute))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if _, err := c.refresh(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("tailnet certificate renewal failed; will retry", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Minute):
			}
		}
	}
}

func (c *certCache) tlsListener(ln net.Listener) net.Listener {
	return tls.NewListener(ln, &tls.Config{
		GetCertificate: c.getCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
		MinVersion:     tls.VersionTLS12,
	})
}
