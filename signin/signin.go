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

	"gatehouse/auth"
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
	rev       *revocations
	recent    *recentRefreshes
	refreshes singleflight.Group

	devices      *devices.Store
	grantChecked sync.Map           // owner subjects whose grant was asked about since start
	loops        sync.WaitGroup     // grantLoop
	tokenUse     *ratelimit.Limiter // per device token
	tokenFails   *ratelimit.Limiter // unknown tokens, per client address
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
	if p := opt.Previous; p != nil && p.cfg.Issuer == cfg.Issuer {
		if prov := p.prov.Load(); prov != nil {
			s.prov.Store(prov)
			s.healthy.Store(p.healthy.Load())
		}
		if p.cfg.ClientID == cfg.ClientID {
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

// The endpoints gatehouse answers itself on every family host.
const (
	callbackPath    = "/.gatehouse/callback"
	loginPath       = "/.gatehouse/login"
	logoutPath      = "/.gatehouse/logout"
	signedOutPath   = "/.gatehouse/signed-out"
	backchannelPath = "/.gatehouse/backchannel-logout"
	devicesPath     = "/.gatehouse/devices"
)

// ServeGatehouse answers gatehouse's own endpoints under /.gatehouse/ on
// family hosts; anything else is left to the route.
func (s *SignIn) ServeGatehouse(w http.ResponseWriter, r *http.Request) bool {
	host := strings.ToLower(r.Host)
	if !s.familyHost(routes.NormalizeHost(host)) {
		return false
	}
	switch routes.CleanPath(r.URL.Path) {
	case callbackPath:
		// GET only: a HEAD (a link checker) must not use up the sign-in.
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writePage(w, http.StatusMethodNotAllowed, "Method not allowed", "This address does not take that method.")
			return true
		}
		s.callback(w, r, host)
	case loginPath:
		if !allowMethods(w, r, http.MethodGet) {
			return true
		}
		s.login(w, r, host)
	case logoutPath:
		if !allowMethods(w, r, http.MethodGet, http.MethodPost) {
			return true
		}
		s.logout(w, r, host)
	case signedOutPath:
		if !allowMethods(w, r, http.MethodGet) {
			return true
		}
		s.signedOut(w, r, host)
	case backchannelPath:
		if !allowMethods(w, r, http.MethodPost) {
			return true
		}
		s.backchannel(w, r)
	case devicesPath:
		if !allowMethods(w, r, http.MethodGet, http.MethodPost) {
			return true
		}
		s.devicesPage(w, r, host)
	default:
		return false
	}
	return true
}

func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writePage(w, http.StatusMethodNotAllowed, "Method not allowed", "This address does not take that method.")
	return false
}

// familyHost reports whether host is the Cloudflare host of a route with
// family access somewhere: the hosts sign-in begins on, returns to and
// has its callback on.
func (s *SignIn) familyHost(host string) bool {
	t := s.opt.Table()
	if t == nil {
		return false
	}
	for _, r := range t.Routes() {
		if dr := r.Doors[routes.Cloudflare]; dr != nil && dr.Host == host && r.UsesAccess(routes.Cloudflare, routes.Family) {
			return true
		}
	}
	return false
}

// Session returns the signed-in family user of the request, or nil. A
// session due for its check is renewed with the refresh token first, and
// its new cookie set on w; an ended one is cleared.
func (s *SignIn) Session(w http.ResponseWriter, r *http.Request) *auth.FamilyUser {
	sess := s.session(w, r)
	if sess == nil {
		return nil
	}
	return &auth.FamilyUser{Subject: sess.Sub, Email: sess.Email, Username: sess.Username, Groups: sess.Groups}
}

// session is Session's verified session record.
func (s *SignIn) session(w http.ResponseWriter, r *http.Request) *session {
	sess, reseal := s.readSession(w, r)
	if sess == nil {
		return nil
	}
	now := s.now()
	if ns := s.recent.newer(sess, now); ns != nil {
		sess, reseal = ns, true
	}
	verdict := judge(sess, now, s.cfg.RefreshInterval, s.rev.revoked(sess))
	if verdict == sessionOver {
		s.cw.clearSession(w, r)
		return nil
	}
	if !s.Ready() {
		// The provider is away: no renewal is tried (it would only wait
		// for a timeout). A session it confirmed recently enough keeps
		// working; any other waits, cookie kept, for the provider to be
		// back (the door answers 503).
		if !withinGrace(sess, now, s.cfg.OutageGrace) {
			return nil
		}
		verdict = sessionValid
	}
	if verdict == sessionRefresh {
		ns, err := s.refresh(r.Context(), sess)
		var trouble *troubleError
		switch {
		case errors.As(err, &trouble):
			s.outcome("provider_error")
			// The provider failed just now (a restart under way): the
			// same grace applies as to a known outage.
			if !withinGrace(sess, now, s.cfg.OutageGrace) {
				return nil
			}
		case err != nil:
			// The provider ended it (user disabled, session gone), or
			// its answer did not verify: the session is over for every
			// copy of its cookie, not just this browser's.
			s.log.Info("session ended at the provider", "sub", sess.Sub, "err", err)
			s.outcome("renewal_refused")
			s.rev.revoke(revokeSession+sess.ID, now)
			s.cw.clearSession(w, r)
			return nil
		default:
			if ns.Checked != sess.Checked {
				s.outcome("renewed")
			}
			sess, reseal = ns, true
		}
	}
	if reseal {
		s.writeSession(w, r, sess)
	}
	return sess
}

// readSession opens the session cookie; reseal reports that it was sealed
// with an older key. A cookie that does not open is cleared.
func (s *SignIn) readSession(w http.ResponseWriter, r *http.Request) (sess *session, reseal bool) {
	val := readSessionValue(r, s.names)
	if val == "" {
		return nil, false
	}
	if e, ok := s.cache.get(val); ok {
		return e.sess, e.reseal
	}
	pt, old, err := s.keys.open(purposeSession, val, s.ad)
	if err == nil {
		sess, err = unmarshalSession(pt)
	}
	if err == nil {
		s.cache.put(val, cachedSession{sess: sess, reseal: old})
	}
	if err != nil {
		s.log.Debug("session cookie refused", "err", err)
		if w != nil {
			s.cw.clearSession(w, r)
		}
		return nil, false
	}
	return sess, old
}

// sessionAD binds a session cookie to this provider and client: a cookie
// from another configuration does not open.
func (s *SignIn) sessionAD() []byte {
	return []byte("session\x00" + s.names.session + "\x00" + s.cfg.Issuer + "\x00" + s.cfg.ClientID)
}

// writeSession stores a session in its cookie. A session too large for
// its cookies first gives up the logout hint (the ID token), then keeps
// only the groups some route of the table asks for; it reports false if
// even that does not fit.
func (s *SignIn) writeSession(w http.ResponseWriter, r *http.Request, sess *session) bool {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var b []byte
		if b, err = marshalSession(sess); err == nil {
			var val string
			if val, err = s.keys.seal(purposeSession, b, s.sessionAD()); err == nil {
				left := time.Unix(0, sess.Expires).Sub(s.now())
				if err = s.cw.writeSessionValue(w, r, val, left); err == nil {
					return true
				}
			}
		}
		cp := *sess
		switch attempt {
		case 0:
			s.log.Warn("session too large for its cookies; logout will not carry id_token_hint", "sub", sess.Sub, "groups", len(sess.Groups))
			cp.IDToken = ""
		case 1:
			s.log.Warn("session still too large; keeping only the groups routes ask for", "sub", sess.Sub, "groups", len(sess.Groups))
			cp.Groups = s.usedGroups(sess.Groups)
		}
		sess = &cp
	}
	s.log.Error("cannot store the session cookie", "sub", sess.Sub, "err", err)
	return false
}

// usedGroups keeps the groups that some route of the table requires.
func (s *SignIn) usedGroups(groups []string) []string {
	want := map[string]bool{}
	if t := s.opt.Table(); t != nil {
		for _, r := range t.Routes() {
			for _, dr := range r.Doors {
				if dr != nil {
					for _, g := range dr.Groups {
						want[g] = true
					}
				}
			}
		}
	}
	var out []string
	for _, g := range groups {
		if want[g] {
			out = append(out, g)
		}
	}
	return out
}

var errNoRefresh = errors.New("no refresh token: sign in again")

// troubleError is a renewal that failed because the provider is down or
// broken, not because it refused: the session is kept (the request gets
// 503 while the provider is down) rather than ended.
type troubleError struct{ err error }

func (e *troubleError) Error() string { return e.err.Error() }
func (e *troubleError) Unwrap() error { return e.err }

// refresh renews a session with its refresh token, once per session at a
// time (concurrent requests wait for the same answer).
func (s *SignIn) refresh(ctx context.Context, sess *session) (*session, error) {
	v, err, _ := s.refreshes.Do(sess.ID, func() (any, error) {
		now := s.now()
		if ns := s.recent.newer(sess, now); ns != nil {
			return ns, nil
		}
		ns, err := s.doRefresh(ctx, sess)
		if err != nil {
			return nil, err
		}
		s.recent.put(ns, now)
		return ns, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*session), nil
}

func (s *SignIn) doRefresh(ctx context.Context, sess *session) (*session, error) {
	p, v := s.verifiers()
	if p == nil {
		return nil, &troubleError{errors.New("provider not discovered")}
	}
	if sess.Refresh == "" {
		return nil, errNoRefresh
	}
	octx, cancel := s.oauthContext(ctx)
	defer cancel()
	tok, err := s.oauth(p, "").TokenSource(octx, &oauth2.Token{RefreshToken: sess.Refresh}).Token()
	if err != nil {
		if providerTrouble(err) {
			s.markDown(err)
			return nil, &troubleError{err}
		}
		return nil, err
	}
	ns := *sess
	ns.Checked = s.now().UnixNano()
	ns.Refresh = tok.RefreshToken
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		// No new ID token: the identity stays as signed in.
		return &ns, nil
	}
	idt, err := verifyIDToken(octx, v, raw, tok.AccessToken)
	if err != nil {
		return nil, fmt.Errorf("refreshed ID token: %w", err)
	}
	if idt.Subject != sess.Sub {
		return nil, errOtherSubject
	}
	id, err := s.tokenIdentity(octx, v, idt, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	ns.Email, ns.Name, ns.Username, ns.Groups = id.Email, id.Name, id.Username, id.Groups
	if id.SID != "" {
		ns.SID = id.SID
	}
	ns.IDToken = raw
	return &ns, nil
}

var errOtherSubject = errors.New("refreshed ID token names another user")

// verifyIDToken checks an ID token as a sign-in and a renewal both must:
// signed by the provider's current keys, its issuer, this client as
// audience, unexpired, and — when it carries at_hash — bound to the access
// token it came with, so an access token of another grant cannot be
// slipped in beside it.
func verifyIDToken(ctx context.Context, v *verifiers, raw, accessToken string) (*oidc.IDToken, error) {
	idt, err := v.id.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(accessToken); err != nil {
			return nil, err
		}
	}
	return idt, nil
}

// tokenIdentity reads who a verified ID token (and, where groups come from
// it, the access token) names: the same for a sign-in and a renewal.
func (s *SignIn) tokenIdentity(ctx context.Context, v *verifiers, idt *oidc.IDToken, accessToken string) (identity, error) {
	var idClaims map[string]any
	if err := idt.Claims(&idClaims); err != nil {
		return identity{}, err
	}
	if err := checkAZP(idClaims, idt.Audience, s.cfg.ClientID); err != nil {
		return identity{}, err
	}
	accessClaims, err := s.accessClaims(ctx, v, accessToken)
	if err != nil {
		return identity{}, err
	}
	return identityFrom(idClaims, accessClaims, s.cfg)
}

// accessClaims verifies the access token (a JWT, as Keycloak issues) when
// groups are read from it: signed by the provider, unexpired, and issued
// to this client.
func (s *SignIn) accessClaims(ctx context.Context, v *verifiers, raw string) (map[string]any, error) {
	if len(s.cfg.GroupsFromAccessToken) == 0 {
		return nil, nil
	}
	t, err := v.access.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("access token (groups_from_access_token needs a JWT access token): %w", err)
	}
	var c map[string]any
	if err := t.Claims(&c); err != nil {
		return nil, err
	}
	if azp, _ := c["azp"].(string); azp != s.cfg.ClientID && !contains(t.Audience, s.cfg.ClientID) {
		return nil, errors.New("access token was issued to another client")
	}
	return c, nil
}

// checkAZP: an ID token with several audiences must name this client as
// its authorized party.
func checkAZP(claims map[string]any, aud []string, clientID string) error {
	if len(aud) <= 1 {
		return nil
	}
	if azp, _ := claims["azp"].(string); azp != clientID {
		return errors.New("ID token has several audiences and is not authorized for this client")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// StripCookies removes gatehouse's own cookies from a request about to be
// forwarded: backends never see the session.
func (s *SignIn) StripCookies(h http.Header) {
	vals := h["Cookie"]
	if len(vals) == 0 {
		return
	}
	var out []string
	for _, line := range vals {
		var kept []string
		changed := false
		for _, part := range strings.Split(line, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if auth.IsGatehouseCookie(strings.TrimSpace(name)) {
				changed = true
				continue
			}
			kept = append(kept, strings.TrimSpace(part))
		}
		if !changed {
			out = append(out, line)
		} else if len(kept) > 0 {
			out = append(out, strings.Join(kept, "; "))
		}
	}
	if len(out) == 0 {
		delete(h, "Cookie")
	} else {
		h["Cookie"] = out
	}
}

func randomString() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return b64.EncodeToString(b)
}
