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
)

// certSource issues a node's certificate; tsnet's local client (which asks
// tailscaled) satisfies it.
type certSource interface {
	CertPair(ctx context.Context, domain string) (certPEM, keyPEM []byte, err error)
}

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
	src     certSource
	domain  string
	storage *certmagic.FileStorage
	log     *slog.Logger

	cur   atomic.Pointer[tls.Certificate]
	fetch sync.Mutex
}

func newCertCache(src certSource, domain, dir string, log *slog.Logger) *certCache {
	return &certCache{src: src, domain: domain, storage: &certmagic.FileStorage{Path: dir}, log: log}
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
	certPEM, keyPEM, err := c.src.CertPair(ctx, c.domain)
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

// renewIn says how long to wait, at now, before asking for leaf's
// successor: until a third of its lifetime is left, at least twice a day
// (tailscaled may have renewed it sooner), and never less than a minute
// (a certificate past its renewal point is asked for again without a
// busy loop). A nil leaf (no certificate yet) is asked for at once.
func renewIn(leaf *x509.Certificate, now time.Time) time.Duration {
	if leaf == nil {
		return 0
	}
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	renewAt := leaf.NotAfter.Add(-life / 3)
	return min(12*time.Hour, max(renewAt.Sub(now), time.Minute))
}

// renewLoop refreshes the certificate when renewIn says so.
func (c *certCache) renewLoop(ctx context.Context) {
	for {
		var leaf *x509.Certificate
		if cert := c.cur.Load(); cert != nil {
			leaf = cert.Leaf
		}
		wait := renewIn(leaf, time.Now())
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
