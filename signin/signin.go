package signin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"gatehouse/devices"
	"gatehouse/ratelimit"
	"gatehouse/routes"
)

// Options tune a SignIn beyond what routes.hcl says.
type Options struct {
	// Table is the route table in force (required): family hosts are the
	// only hosts sign-in answers on and returns to.
	Table func() *routes.Table
	Log   *slog.Logger
	// HTTPClient talks to the provider; nil: a client with timeouts.
	HTTPClient *http.Client
	// Previous is the SignIn this one replaces on reload. Its discovered
	// provider is kept when the issuer is the same (no 503 blip), and its
	// revocations when issuer and client are the same.
	Previous *SignIn
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
	// RetryMin and RetryMax bound the backoff while the provider is
	// unreachable; ProbeEvery is how often a reachable provider is asked
	// whether it still is; RequestTimeout bounds each provider request.
	RetryMin, RetryMax, ProbeEvery, RequestTimeout time.Duration
	// GrantCheckEvery is how often device token owners' grants are looked
	// at for renewal (each is renewed once device_refresh_interval has
	// passed); default a minute.
	GrantCheckEvery time.Duration
	// MaxRevocations bounds the revocation record (default 100000).
	MaxRevocations int
	// Outcome, if set, counts what happened (metrics): "signed_in",
	// "refused", "provider_error", "renewed", "renewal_refused", "logout",
	// "backchannel_logout", "device_token_created", "device_token_revoked",
	// "device_token_refused".
	Outcome func(outcome string)
	// Limits gives device token use its rate limits: the gateway's
	// *ratelimit.Registry (nil: device tokens are not limited).
	Limits LimiterSource
	// DeviceTokenRule limits each device token's use; zero: 20 requests
	// a second, bursts of 400 (a photo app's first sync is busy).
	DeviceTokenRule ratelimit.Rule
	// DeviceTokenFailures limits unknown tokens per client address; zero:
	// 1 a second, bursts of 10, and 30 within 10 minutes ban the address
	// from trying tokens for an hour.
	DeviceTokenFailures ratelimit.Rule
}

// SignIn is family sign-in with an OpenID Provider (Keycloak): the code
// flow with PKCE, stateless sealed session cookies renewed with the refresh
// token, logout through the provider, and back-channel logout. It
// implements proxy.SignIn.
type SignIn struct {
	cfg    *routes.OIDCConfig
	opt    Options
	log    *slog.Logger
	client *http.Client
	secret string
	keys   *keyring
	names  cookieNames
	cw     cookieWriter
	now    func() time.Time

	prov     atomic.Pointer[provider]
	verif    atomic.Pointer[verifiers]
	healthy  atomic.Bool
	everDown atomic.Bool
	kick     chan struct{}
	done     chan struct{}
	cancel   context.CancelFunc

	ad        []byte        // sessionAD, computed once
	cache     *sessionCache // opened session cookies
	held      *tokenMemory  // sessions' tokens, by session id
	rev       *revocations
	recent    *recentRefreshes
	refreshes singleflight.Group

	devices      *devices.Store
	grantChecked sync.Map           // owner subjects whose grant was asked about since start
	loops        sync.WaitGroup     // grantLoop
	tokenUse     *ratelimit.Limiter // per device token
	tokenFails   *ratelimit.Limiter // unknown tokens, per client address
	used         *lastUse           // device tokens' last use, for the dashboard
}

type verifiers struct {
	p      *provider
	id     *oidc.IDTokenVerifier
	access *oidc.IDTokenVerifier
}

// New builds family sign-in from the oidc block and starts discovering the
// provider in the background; it returns at once. Errors are local: an
// unreadable client secret or cookie key file.
func New(cfg *routes.OIDCConfig, opt Options) (*SignIn, error) {
	if cfg == nil {
		return nil, errors.New("no oidc block")
	}
	if opt.Table == nil {
		return nil, errors.New("signin: Options.Table is required")
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.RetryMin <= 0 {
		opt.RetryMin = time.Second
	}
	if opt.RetryMax <= 0 {
		opt.RetryMax = time.Minute
	}
	if opt.ProbeEvery <= 0 {
		opt.ProbeEvery = 30 * time.Second
	}
	if opt.RequestTimeout <= 0 {
		opt.RequestTimeout = 15 * time.Second
	}
	if opt.GrantCheckEvery <= 0 {
		opt.GrantCheckEvery = time.Minute
	}
	if opt.MaxRevocations <= 0 {
		opt.MaxRevocations = 100_000
	}
	client := opt.HTTPClient
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		client = &http.Client{Transport: tr, Timeout: opt.RequestTimeout}
	}
	secret, err := os.ReadFile(cfg.ClientSecretFile)
	if err != nil {
		return nil, fmt.Errorf("oidc client secret: %w", err)
	}
	s := &SignIn{
		cfg:    cfg,
		opt:    opt,
		log:    opt.Log,
		client: client,
		secret: strings.TrimSpace(string(secret)),
		names:  namesFor(cfg.CookieDomain),
		now:    opt.Now,
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		recent: newRecent(4096, time.Minute),
		cache:  newSessionCache(),
		held:   newTokenMemory(maxHeldTokens),
	}
	s.ad = s.sessionAD()
	if s.secret == "" {
		return nil, fmt.Errorf("oidc client secret file %s is empty", cfg.ClientSecretFile)
	}
	s.cw = cookieWriter{names: s.names}
	if s.keys, err = loadKeys(cfg.CookieKeyFile, func(m string) { opt.Log.Warn(m) }); err != nil {
		return nil, err
	}
	tokenFile := cfg.DeviceTokenFile
	if tokenFile == "" {
		tokenFile = filepath.Join(filepath.Dir(cfg.CookieKeyFile), "devices.json")
	}
	if s.devices, err = devices.Open(tokenFile, opt.Now); err != nil {
		return nil, err
	}
	s.setupDeviceLimits()
	s.rev = newRevocations(cfg.SessionLifetime, opt.MaxRevocations)
	s.used = &lastUse{}
	if p := opt.Previous; p != nil {
		s.used = p.used
	}
	if p := opt.Previous; p != nil && p.cfg.Issuer == cfg.Issuer {
		if prov := p.prov.Load(); prov != nil {
			s.prov.Store(prov)
			s.healthy.Store(p.healthy.Load())
		}
		if p.cfg.ClientID == cfg.ClientID {
			// The tokens too: a reload sends nobody through
			// /.gatehouse/renew.
			s.held = p.held
			s.rev = p.rev
			s.rev.mu.Lock()
			s.rev.keep = max(s.rev.keep, cfg.SessionLifetime)
			s.rev.mu.Unlock()
		}
	}
	if opt.Previous == nil {
		s.warnUnbound()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.watch(ctx)
	s.loops.Add(1)
	go s.grantLoop(ctx)
	return s, nil
}

// maxHeldTokens bounds the tokens memory: a household has a few dozen
// sessions; past this, losing an entry costs its session one trip through
// /.gatehouse/renew.
const maxHeldTokens = 4096

func (s *SignIn) outcome(o string) {
	if s.opt.Outcome != nil {
		s.opt.Outcome(o)
	}
}

// Close stops the background discovery.
func (s *SignIn) Close() {
	s.cancel()
	<-s.done
	s.loops.Wait()
}

// Config is the oidc block this SignIn was built from.
func (s *SignIn) Config() *routes.OIDCConfig { return s.cfg }

// Ready reports whether the provider is discovered and answering.
func (s *SignIn) Ready() bool { return s.prov.Load() != nil && s.healthy.Load() }

func (s *SignIn) verifiers() (*provider, *verifiers) {
	p := s.prov.Load()
	if p == nil {
		return nil, nil
	}
	if v := s.verif.Load(); v != nil && v.p == p {
		return p, v
	}
	v := &verifiers{
		p:      p,
		id:     p.op.Verifier(&oidc.Config{ClientID: s.cfg.ClientID, Now: s.now}),
		access: p.op.Verifier(&oidc.Config{SkipClientIDCheck: true, Now: s.now}),
	}
	s.verif.Store(v)
	return p, v
}

func (s *SignIn) oauth(p *provider, host string) *oauth2.Config {
	c := &oauth2.Config{
		ClientID:     s.cfg.ClientID,
		ClientSecret: s.secret,
		Endpoint:     p.endpoint,
		Scopes:       s.cfg.Scopes,
	}
	if host != "" {
		c.RedirectURL = "https://" + host + callbackPath
	}
	return c
}

func (s *SignIn) oauthContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opt.RequestTimeout)
	return context.WithValue(ctx, oauth2.HTTPClient, s.client), cancel
}

func randomString() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return b64.EncodeToString(b)
}
