package lan

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/libdns/cloudflare"
	"github.com/mholt/acmez/v3/acme"
	"go.uber.org/zap"

	"gatehouse/routes"
)

// ManagerOptions configure a Manager. Config and Names are required; the
// rest have working zero values.
type ManagerOptions struct {
	Config *routes.LANConfig
	// Names are the certificate names (routes.LANNames).
	Names []string
	Log   *slog.Logger

	// DNS, if set, answers the DNS-01 challenge instead of Cloudflare's
	// DNS API (tests).
	DNS DNSProvider
	// CloudflareClient, if set, carries the Cloudflare provider's API
	// requests (tests point it at a loopback server).
	CloudflareClient cloudflare.HTTPClient
	// Resolvers are the DNS servers (host:port) asked for the zone and for
	// the challenge record's propagation; nil: the system's.
	Resolvers []string
	// CARoots, if set, are the roots the ACME server's HTTPS is checked
	// against; nil: the system's.
	CARoots *x509.CertPool
	// RenewCheckInterval is how often certificates are checked for renewal;
	// 0: certmagic's default (10 minutes).
	RenewCheckInterval time.Duration
	// RetryIntervals are the waits between attempts to get a certificate
	// that is missing, the last repeated; nil: RetrySchedule.
	RetryIntervals []time.Duration
}

// RetrySchedule is how long the LAN door waits between attempts to get a
// missing certificate: certmagic's own schedule (its async.go), without
// its giving up after 30 days, since a home server has no one watching
// and should keep trying. The waits grow because what usually needs
// fixing (a token, the DNS, the network) takes a person some time.
var RetrySchedule = []time.Duration{
	time.Minute, 2 * time.Minute, 2 * time.Minute, 5 * time.Minute, // 10 min
	10 * time.Minute, 10 * time.Minute, 10 * time.Minute, 20 * time.Minute, // 1 h
	20 * time.Minute, 20 * time.Minute, 20 * time.Minute, // 2 h
	30 * time.Minute, 30 * time.Minute, 30 * time.Minute, 30 * time.Minute, // 4 h
	time.Hour, time.Hour, 2 * time.Hour, 3 * time.Hour, 3 * time.Hour, // 13 h
	6 * time.Hour,
}

// Manager obtains, stores and renews the LAN door's certificates, and
// knows what state they are in.
type Manager struct {
	log   *slog.Logger
	cfg   *certmagic.Config
	cache *certmagic.Cache
	lan   *routes.LANConfig
	// attempts is cfg for gatehouse's own attempts (keep), with an issuer
	// that never prompts; certificates it caches are maintained by cfg.
	attempts *certmagic.Config
	retry    []time.Duration
	// loops are the running keep goroutines, which Stop waits for.
	loops sync.WaitGroup
	// alive ends with Stop, and with it every retry loop.
	alive context.Context
	stop  context.CancelFunc

	mu    sync.Mutex
	names []string
	// reported: certmagic's event already counted the failure of the
	// attempt under way for a name (keep counts the others).
	reported  map[string]bool
	lastErr   error
	lastErrAt time.Time
	failures  uint64
	// renewFailed: the last failure was a renewal of a certificate that
	// is still valid (a warning), not a missing one.
	renewFailed bool
}

// NewManager sets certmagic up for the LAN door; nothing is asked of the
// CA until Start.
func NewManager(o ManagerOptions) *Manager {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	m := &Manager{log: o.Log.With("door", "lan"), lan: o.Config, names: slices.Clone(o.Names),
		retry: o.RetryIntervals, reported: map[string]bool{}}
	if len(m.retry) == 0 {
		m.retry = RetrySchedule
	}
	m.alive, m.stop = context.WithCancel(context.Background())
	dns := o.DNS
	if dns == nil {
		dns = &cloudflareDNS{tokenFile: o.Config.DNSTokenFile, client: o.CloudflareClient}
	}
	// certmagic logs through zap; what a user needs to know gatehouse
	// logs itself from certmagic's events (event, below).
	nop := zap.NewNop()
	var cfg *certmagic.Config
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return cfg, nil },
		RenewCheckInterval: o.RenewCheckInterval,
		Logger:             nop,
	})
	cfg = certmagic.New(m.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: filepath.Join(o.Config.StateDir, "certmagic")},
		// Let's Encrypt no longer runs OCSP; stapling would only reach out
		// to the network for nothing.
		OCSP:    certmagic.OCSPConfig{DisableStapling: true},
		OnEvent: m.event,
		Logger:  nop,
	})
	issuer := certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{
		CA:                      o.Config.ACMECA,
		Email:                   o.Config.ACMEEmail,
		Agreed:                  true,
		TrustedRoots:            o.CARoots,
		DisableHTTPChallenge:    true,
		DisableTLSALPNChallenge: true,
		DNS01Solver: &certmagic.DNS01Solver{DNSManager: certmagic.DNSManager{
			DNSProvider: dns,
			Resolvers:   o.Resolvers,
			Logger:      nop,
		}},
		Logger: nop,
	})
	cfg.Issuers = []certmagic.Issuer{issuer}
	m.cfg = cfg
	// certmagic's own background attempts retry on a schedule of its own
	// that nothing can shorten; gatehouse makes single attempts (certmagic
	// calls them interactive) on RetryIntervals instead.
	m.attempts = certmagic.New(m.cache, *cfg)
	m.attempts.Issuers = []certmagic.Issuer{quietIssuer{issuer}}
	return m
}

// quietIssuer is the ACME issuer for gatehouse's own attempts: certmagic
// lets an "interactive" attempt without an acme_email ask for one on
// stdin, and a service has no one to ask.
type quietIssuer struct{ *certmagic.ACMEIssuer }

func (q quietIssuer) PreCheck(ctx context.Context, names []string, _ bool) error {
	return q.ACMEIssuer.PreCheck(ctx, names, false)
}

// Start loads the stored certificates, which are served at once, and
// obtains or renews the others in the background, retrying with backoff.
// It never waits for the CA. Retries end with ctx or Stop.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	names := slices.Clone(m.names)
	m.mu.Unlock()
	for _, n := range names {
		m.loops.Add(1)
		go m.keep(ctx, n)
	}
	return nil
}

// keep brings name under management: its stored certificate loaded (and
// renewed if due), or a new one obtained, one attempt at a time with
// m.retry's waits in between. Each attempt starts afresh, so whatever the
// admin fixed meanwhile (the token file above all: cloudflareDNS reads it
// on every use) counts at the next one. Once the certificate is managed,
// certmagic's maintenance renews it.
func (m *Manager) keep(ctx context.Context, name string) {
	defer m.loops.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer context.AfterFunc(m.alive, cancel)()
	defer cancel()
	for attempt := 0; ; attempt++ {
		m.mu.Lock()
		delete(m.reported, name)
		m.mu.Unlock()
		// The count lets certmagic's issuer try a retry against the CA's
		// staging directory first, as its own retries do (Let's Encrypt's
		// rate limits are for production).
		n := attempt
		err := m.attempts.ManageSync(context.WithValue(ctx, certmagic.AttemptsCtxKey, &n), []string{name})
		if err == nil || ctx.Err() != nil {
			return
		}
		m.mu.Lock()
		if !m.reported[name] {
			// A failure certmagic sends no event for: storage, locking.
			m.lastErr, m.lastErrAt, m.renewFailed = err, time.Now(), false
			m.failures++
			m.mu.Unlock()
			m.log.Error("LAN certificate attempt failed", "name", name, "err", err)
		} else {
			m.mu.Unlock()
		}
		if !m.expires(name).IsZero() {
			// A stored certificate is loaded, only its renewal failed:
			// certmagic's maintenance retries that.
			return
		}
		wait := m.retry[min(attempt, len(m.retry)-1)]
		m.log.Info("next LAN certificate attempt", "name", name, "in", wait.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Manage adds names (a reload that brought new LAN hosts); names already
// managed are left alone.
func (m *Manager) Manage(ctx context.Context, names []string) error {
	m.mu.Lock()
	var added []string
	for _, n := range names {
		if !slices.Contains(m.names, n) {
			added = append(added, n)
			m.names = append(m.names, n)
		}
	}
	m.mu.Unlock()
	for _, n := range added {
		m.loops.Add(1)
		go m.keep(ctx, n)
	}
	return nil
}

// Stop ends renewals and retries, and waits for an attempt under way to
// give up, so nothing writes to the state directory once it returns.
func (m *Manager) Stop() {
	m.stop()
	m.loops.Wait()
	m.cache.Stop()
}

// TLSConfig serves the managed certificates, HTTP/2 first. A name without
// a valid certificate fails the handshake: nothing is ever served with a
// certificate the browser would have to be talked into.
func (m *Manager) TLSConfig() *tls.Config {
	tc := m.cfg.TLSConfig()
	tc.NextProtos = []string{"h2", "http/1.1"} // no acme-tls/1: DNS-01 only
	tc.MinVersion = tls.VersionTLS12
	return tc
}

// event turns certmagic's events into gatehouse's log and status.
func (m *Manager) event(_ context.Context, name string, data map[string]any) error {
	switch name {
	case "cert_failed":
		err, _ := data["error"].(error)
		if err == nil {
			err = errors.New("unknown failure")
		}
		renewal, _ := data["renewal"].(bool)
		id, _ := data["identifier"].(string)
		m.mu.Lock()
		m.lastErr, m.lastErrAt, m.renewFailed = err, time.Now(), renewal
		m.failures++
		m.reported[id] = true
		m.mu.Unlock()
		attrs := []any{"name", id, "err", describe(err)}
		if renewal {
			if exp := m.expires(id); !exp.IsZero() {
				attrs = append(attrs, "expires", exp.UTC().Format(time.RFC3339))
			}
			m.log.Warn("LAN certificate renewal failed; the current certificate is served until it expires, and renewal is retried", attrs...)
		} else {
			m.log.Error("no LAN certificate yet: the LAN door refuses TLS handshakes for it until one is obtained; retrying with backoff", attrs...)
		}
	case "cert_obtained":
		id, _ := data["identifier"].(string)
		renewal, _ := data["renewal"].(bool)
		m.mu.Lock()
		m.lastErr, m.renewFailed = nil, false
		m.mu.Unlock()
		m.log.Info("LAN certificate obtained", "name", id, "renewal", renewal)
	case "cached_managed_cert":
		m.log.Info("LAN certificate loaded", "names", data["sans"])
	}
	return nil
}

// expires is when the certificate served for name ends; zero without one.
func (m *Manager) expires(name string) time.Time {
	var end time.Time
	for _, c := range m.cache.AllMatchingCertificates(name) {
		if c.Leaf != nil && c.Leaf.NotAfter.After(end) {
			end = c.Leaf.NotAfter
		}
	}
	return end
}

// describe names what went wrong: the ACME server's problem document when
// there is one, else the error as it is.
func describe(err error) string {
	var p acme.Problem
	if errors.As(err, &p) {
		return fmt.Sprintf("ACME problem %s: %s (%v)", p.Type, p.Detail, err)
	}
	return err.Error()
}
