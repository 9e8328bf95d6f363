// Package oidctest is the one OpenID Provider of the tests and the bench:
// a real OpenID Provider in-process: github.com/zitadel/oidc/v3's OP with
// a storage that issues Keycloak-shaped tokens. It serves under
// /realms/home on Keycloak's endpoint paths, issues JWT access tokens
// carrying realm_access.roles and resource_access.<client>.roles (roles only
// in the access token, as Keycloak does by default), puts groups with full
// paths ("/family") and a sid into ID tokens, checks PKCE (S256) and client
// secrets itself, refuses refresh for disabled users and ended sessions,
// ends sessions at its end_session endpoint (id_token_hint verified by the
// OP) and, like Keycloak, can POST back-channel logout tokens to a client.
package oidctest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// tokenLifetime is long because the tests move the gateway's clock ahead
// by hours while the provider keeps real time.
const tokenLifetime = 24 * time.Hour

const (
	RealmPath = "/realms/home"
	ClientID  = "gatehouse"
	Secret    = "s3cret-for-tests"
)

type User struct {
	ID            string
	Username      string
	Password      string
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string            // full paths, as with "Full group path" on
	RealmRoles    []string            // realm_access.roles (access token only)
	ClientRoles   map[string][]string // resource_access.<client>.roles
	Disabled      bool
}

type kcAuthRequest struct {
	id        string
	clientID  string
	redirect  string
	state     string
	nonce     string
	scopes    []string
	respType  oidc.ResponseType
	respMode  oidc.ResponseMode
	challenge *oidc.CodeChallenge
	prompt    []string
	userID    string
	sid       string
	authTime  time.Time
	done      bool
}

func (a *kcAuthRequest) GetID() string                         { return a.id }
func (a *kcAuthRequest) GetACR() string                        { return "" }
func (a *kcAuthRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *kcAuthRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *kcAuthRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *kcAuthRequest) GetClientID() string                   { return a.clientID }
func (a *kcAuthRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *kcAuthRequest) GetNonce() string                      { return a.nonce }
func (a *kcAuthRequest) GetRedirectURI() string                { return a.redirect }
func (a *kcAuthRequest) GetResponseType() oidc.ResponseType    { return a.respType }
func (a *kcAuthRequest) GetResponseMode() oidc.ResponseMode    { return a.respMode }

// GetScopes always holds offline_access: zitadel's OP issues a refresh
// token only then, while Keycloak issues one to every code grant. Whether
// the client really asked for an offline token is kept apart (offline).
func (a *kcAuthRequest) GetScopes() []string {
	if slices.Contains(a.scopes, oidc.ScopeOfflineAccess) {
		return a.scopes
	}
	return append(slices.Clone(a.scopes), oidc.ScopeOfflineAccess)
}
func (a *kcAuthRequest) offline() bool      { return slices.Contains(a.scopes, oidc.ScopeOfflineAccess) }
func (a *kcAuthRequest) GetState() string   { return a.state }
func (a *kcAuthRequest) GetSubject() string { return a.userID }
func (a *kcAuthRequest) Done() bool         { return a.done }

type kcRefresh struct {
	token    string
	userID   string
	clientID string
	sid      string
	scopes   []string
	authTime time.Time
	// offline: an offline token (scope offline_access). Like Keycloak's,
	// it outlives the browser's session (a logout, SSO idle) and ends
	// only when revoked, or with the account.
	offline bool
}

func (r *kcRefresh) GetAMR() []string            { return []string{"pwd"} }
func (r *kcRefresh) GetAudience() []string       { return []string{r.clientID} }
func (r *kcRefresh) GetAuthTime() time.Time      { return r.authTime }
func (r *kcRefresh) GetClientID() string         { return r.clientID }
func (r *kcRefresh) GetScopes() []string         { return r.scopes }
func (r *kcRefresh) GetSubject() string          { return r.userID }
func (r *kcRefresh) SetCurrentScopes(s []string) { r.scopes = s }

// Key is one of the provider's signing keys.
type Key struct {
	id  string
	key *rsa.PrivateKey
}

// signingKey is a Key as zitadel's OP takes it (its Key method names the
// private or public half, which Key's own fields cannot be called).
type signingKey = Key

func (k *Key) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *Key) Algorithm() jose.SignatureAlgorithm          { return jose.RS256 }
func (k *Key) ID() string                                  { return k.id }
func (k *Key) Use() string                                 { return "sig" }

type kcPrivate struct{ *signingKey }

func (k kcPrivate) Key() any { return k.key }

type kcPublic struct{ *signingKey }

func (k kcPublic) Key() any { return &k.key.PublicKey }

// kcClient is the confidential client made for gatehouse, with redirect
// URIs on every host under domain.
type kcClient struct{ id, domain string }

func (c kcClient) GetID() string                       { return c.id }
func (c kcClient) RedirectURIs() []string              { return nil }
func (c kcClient) PostLogoutRedirectURIs() []string    { return nil }
func (c kcClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c kcClient) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c kcClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c kcClient) LoginURL(id string) string            { return RealmPath + "/login?authRequestID=" + id }
func (c kcClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (c kcClient) IDTokenLifetime() time.Duration       { return tokenLifetime }
func (c kcClient) DevMode() bool                        { return false }
func (c kcClient) IsScopeAllowed(string) bool           { return false }
func (c kcClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c kcClient) ClockSkew() time.Duration             { return 0 }
func (c kcClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c kcClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c kcClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}

// Valid redirect URIs, as in Keycloak: the callback on every family host.
func (c kcClient) RedirectURIGlobs() []string {
	return []string{"https://*." + c.domain + "/.gatehouse/callback", "https://*." + c.domain + ":*/.gatehouse/callback"}
}
func (c kcClient) PostLogoutRedirectURIGlobs() []string {
	return []string{"https://*." + c.domain + "/.gatehouse/signed-out", "https://*." + c.domain + ":*/.gatehouse/signed-out"}
}

// Provider is the provider and its test controls.
type Provider struct {
	// fail reports what a helper cannot recover from (Options.Fail).
	fail   func(error)
	domain string // of the client's redirect URIs
	// autoLogin, if set, is the user every authorization request is
	// answered for at once, with no login form (Options.AutoLogin).
	autoLogin string
	Issuer    string
	addr      string
	srv       *httptest.Server
	prov      *op.Provider
	mux       *http.ServeMux

	Mu        sync.Mutex
	users     map[string]*User
	reqs      map[string]*kcAuthRequest
	codes     map[string]string
	Refreshes map[string]*kcRefresh
	Keys      []*Key            // current first
	ended     map[string]bool   // sids ended at the provider
	sso       map[string]string // sid → user id of browsers' SSO sessions
	seq       int

	// keepRefresh leaves a used refresh token valid, as Keycloak does by
	// default ("Revoke Refresh Token" off); false rotates them.
	KeepRefresh bool
	// tokensDown makes the token endpoint answer 503 while discovery
	// still works: a Keycloak halfway through a restart.
	TokensDown bool
	// tamper, if set, rewrites the token endpoint's JSON answer to a
	// grant (a provider gone wrong, or tokens mixed up on the way).
	tamper func(grantType string, body map[string]any)

	// What the provider saw, for assertions.
	authorizeCalls int
	refreshCalls   int
	SSOLogins      int // authorization requests answered by the SSO session
	revocations    int // tokens revoked at the revocation endpoint
	EndSessions    []url.Values
	LastAuthorize  url.Values
}

// Options tune a Provider.
type Options struct {
	// Log receives the provider's own log; nil: discarded.
	Log *slog.Logger
	// Fail is called when a helper cannot go on (tests pass t.Fatal's
	// like); nil panics.
	Fail func(error)
	// AutoLogin, if set, names a user added with AddUser whom every
	// authorization request signs in at once, as a browser with a live
	// single sign-on session would be (the bench's family user).
	AutoLogin string
	// Domain is where the client's redirect URIs may be (every host under
	// it); default example.com.
	Domain string
}

// New prepares a provider at addr (127.0.0.1:0 for any port) without
// starting it.
func New(addr string, opt Options) (*Provider, error) {
	if opt.Log == nil {
		opt.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opt.Fail == nil {
		opt.Fail = func(err error) { panic(err) }
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if opt.Domain == "" {
		opt.Domain = "example.com"
	}
	kc := &Provider{
		domain:    opt.Domain,
		fail:      opt.Fail,
		autoLogin: opt.AutoLogin,
		addr:      ln.Addr().String(),
		users:     map[string]*User{},
		reqs:      map[string]*kcAuthRequest{},
		codes:     map[string]string{},
		Refreshes: map[string]*kcRefresh{},
		ended:     map[string]bool{},
		sso:       map[string]string{},
	}
	ln.Close()
	kc.Issuer = "https://" + kc.addr + RealmPath
	kc.RotateKey()
	var cryptoKey [32]byte
	rand.Read(cryptoKey[:])
	cfg := &op.Config{
		CryptoKey:                  cryptoKey,
		DefaultLogoutRedirectURI:   RealmPath + "/logged-out",
		CodeMethodS256:             true,
		GrantTypeRefreshToken:      true,
		BackChannelLogoutSupported: true,
	}
	kc.prov, err = op.NewProvider(cfg, kc, op.StaticIssuer(kc.Issuer),
		op.WithLogger(opt.Log),
		op.WithCustomEndpoints(
			op.NewEndpoint("protocol/openid-connect/auth"),
			op.NewEndpoint("protocol/openid-connect/token"),
			op.NewEndpoint("protocol/openid-connect/userinfo"),
			op.NewEndpoint("protocol/openid-connect/revoke"),
			op.NewEndpoint("protocol/openid-connect/logout"),
			op.NewEndpoint("protocol/openid-connect/certs"),
		),
	)
	if err != nil {
		return nil, err
	}
	kc.mux = http.NewServeMux()
	interceptor := op.NewIssuerInterceptor(kc.prov.IssuerFromRequest)
	kc.mux.Handle("GET "+RealmPath+"/login", interceptor.HandlerFunc(kc.loginPage))
	kc.mux.Handle("POST "+RealmPath+"/login", interceptor.HandlerFunc(kc.loginSubmit))
	kc.mux.HandleFunc(RealmPath+"/logged-out", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "logged out") })
	kc.mux.Handle(RealmPath+"/", http.StripPrefix(RealmPath, kc.observe(kc.prov)))
	return kc, nil
}

// observe records what reached the provider's endpoints.
func (kc *Provider) observe(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		kc.Mu.Lock()
		switch r.URL.Path {
		case "/protocol/openid-connect/auth":
			kc.authorizeCalls++
			kc.LastAuthorize = r.Form
		case "/protocol/openid-connect/token":
			if r.PostForm.Get("grant_type") == "refresh_token" {
				kc.refreshCalls++
			}
		case "/protocol/openid-connect/logout":
			kc.EndSessions = append(kc.EndSessions, r.Form)
		}
		tamper, down := kc.tamper, kc.TokensDown
		kc.Mu.Unlock()
		if down && r.URL.Path == "/protocol/openid-connect/token" {
			http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
			return
		}
		if tamper == nil || r.URL.Path != "/protocol/openid-connect/token" {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var body map[string]any
		if rec.Code == http.StatusOK && json.Unmarshal(rec.Body.Bytes(), &body) == nil {
			tamper(r.PostForm.Get("grant_type"), body)
			b, _ := json.Marshal(body)
			rec.Body.Reset()
			rec.Body.Write(b)
			rec.Header().Del("Content-Length")
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
}

// setTamper installs (or, with nil, removes) a rewrite of token answers.
func (kc *Provider) SetTamper(f func(grantType string, body map[string]any)) {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	kc.tamper = f
}

// Start serves the provider over HTTPS with httptest's certificate
// (CertPool trusts it), again after a Stop: at the same address, as a
// restarted Keycloak.
func (kc *Provider) Start() {
	ln, err := net.Listen("tcp", kc.addr)
	if err != nil {
		kc.fail(fmt.Errorf("provider: %w", err))
		return
	}
	kc.srv = httptest.NewUnstartedServer(kc.mux)
	kc.srv.Listener.Close()
	kc.srv.Listener = ln
	kc.srv.StartTLS()
}

func (kc *Provider) Stop() {
	if kc.srv != nil {
		kc.srv.CloseClientConnections()
		kc.srv.Close()
		kc.srv = nil
	}
}

// CertificatePEM is the certificate the provider serves (httptest's), for
// a program that trusts it through a file (SSL_CERT_FILE).
func CertificatePEM() []byte {
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.StartTLS()
	defer srv.Close()
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// CertPool trusts httptest's certificate, which covers 127.0.0.1 and
// *.example.com (the provider and the tests' family hosts).
func CertPool() *x509.CertPool {
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return pool
}

func (kc *Provider) AddUser(u *User) {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	if u.ID == "" {
		u.ID = "id-" + u.Username
	}
	if u.Password == "" {
		u.Password = "pw-" + u.Username
	}
	kc.users[u.ID] = u
}

func (kc *Provider) Update(username string, f func(*User)) {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	for _, u := range kc.users {
		if u.Username == username {
			f(u)
		}
	}
}

func (kc *Provider) RotateKey() {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		kc.fail(err)
		return
	}
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	kc.seq++
	kc.Keys = append([]*Key{{id: fmt.Sprintf("key-%d", kc.seq), key: key}}, kc.Keys...)
}

func (kc *Provider) Counts() (authorize, refresh int) {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	return kc.authorizeCalls, kc.refreshCalls
}

// sessionsOf lists the provider sessions (sids) of a user.
func (kc *Provider) SessionsOf(username string) []string {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, r := range kc.Refreshes {
		if u := kc.users[r.userID]; u != nil && u.Username == username && !seen[r.sid] && !kc.ended[r.sid] {
			seen[r.sid] = true
			out = append(out, r.sid)
		}
	}
	return out
}

// logoutToken is what Keycloak POSTs to a client's back-channel logout URL.
func (kc *Provider) LogoutToken(sub, sid string, mutate func(map[string]any)) string {
	kc.Mu.Lock()
	key := kc.Keys[0]
	kc.seq++
	jti := fmt.Sprintf("jti-%d", kc.seq)
	kc.Mu.Unlock()
	now := time.Now()
	claims := map[string]any{
		"iss": kc.Issuer, "aud": ClientID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti": jti, "typ": "Logout",
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
	if sub != "" {
		claims["sub"] = sub
	}
	if sid != "" {
		claims["sid"] = sid
	}
	if mutate != nil {
		mutate(claims)
	}
	s, err := SignJWT(key, claims)
	if err != nil {
		kc.fail(err)
	}
	return s
}

// SignJWT signs claims as a logout token (typ logout+jwt).
func SignJWT(key *Key, claims map[string]any) (string, error) {
	return SignTyped(key, "logout+jwt", claims)
}

// SignTyped signs claims as a JWT with the given typ header.
func SignTyped(key *Key, typ string, claims map[string]any) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key.key},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", key.id))
	if err != nil {
		return "", err
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// NewKey makes a signing key with the given key id, for tokens the
// provider never issued (a forgery with a known kid).
func NewKey(id string, key *rsa.PrivateKey) *Key { return &Key{id: id, key: key} }

// endSID ends a provider session (an admin's "sign out" in Keycloak).
func (kc *Provider) EndSID(sid string) {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	kc.ended[sid] = true
}

// --- login UI ---

// ssoCookie is the browser's single sign-on session at the provider, as
// Keycloak's KEYCLOAK_IDENTITY: while its session lasts, a new
// authorization request is answered without the login form (unless it
// asks for prompt=login).
const ssoCookie = "KEYCLOAK_IDENTITY"

func (kc *Provider) loginPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	if kc.autoLogin != "" {
		kc.Mu.Lock()
		req := kc.reqs[id]
		var user *User
		for _, u := range kc.users {
			if u.Username == kc.autoLogin {
				user = u
			}
		}
		if req != nil && user != nil && !user.Disabled {
			kc.seq++
			req.userID, req.sid, req.authTime, req.done = user.ID, fmt.Sprintf("sid-%d", kc.seq), time.Now(), true
			kc.Mu.Unlock()
			http.Redirect(w, r, op.AuthCallbackURL(kc.prov)(r.Context(), id), http.StatusFound)
			return
		}
		kc.Mu.Unlock()
	}
	if c, err := r.Cookie(ssoCookie); err == nil {
		kc.Mu.Lock()
		req, sso := kc.reqs[id], kc.sso[c.Value]
		user := kc.users[sso]
		if req != nil && user != nil && !user.Disabled && !kc.ended[c.Value] && !slices.Contains(req.prompt, oidc.PromptLogin) {
			req.userID, req.sid, req.authTime, req.done = user.ID, c.Value, time.Now(), true
			kc.SSOLogins++
			kc.Mu.Unlock()
			http.Redirect(w, r, op.AuthCallbackURL(kc.prov)(r.Context(), id), http.StatusFound)
			return
		}
		kc.Mu.Unlock()
	}
	fmt.Fprintf(w, `<!doctype html><title>Sign in to home</title>
<form method="post" action="%s/login"><input type="hidden" name="id" value="%s">
<input id="username" name="username"><input id="password" name="password" type="password">
<button id="kc-login" type="submit">Sign In</button></form>`, RealmPath, html.EscapeString(id))
}

func (kc *Provider) loginSubmit(w http.ResponseWriter, r *http.Request) {
	id := r.FormValue("id")
	kc.Mu.Lock()
	req := kc.reqs[id]
	var user *User
	for _, u := range kc.users {
		if u.Username == r.FormValue("username") && u.Password == r.FormValue("password") {
			user = u
		}
	}
	if req == nil || user == nil || user.Disabled {
		kc.Mu.Unlock()
		http.Error(w, "Invalid username or password.", http.StatusUnauthorized)
		return
	}
	kc.seq++
	req.userID, req.sid, req.authTime, req.done = user.ID, fmt.Sprintf("sid-%d", kc.seq), time.Now(), true
	kc.sso[req.sid] = user.ID
	kc.Mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: req.sid, Path: RealmPath, Secure: true, HttpOnly: true, SameSite: http.SameSiteNoneMode})
	http.Redirect(w, r, op.AuthCallbackURL(kc.prov)(r.Context(), id), http.StatusFound)
}

// --- op.Storage ---

func (kc *Provider) CreateAuthRequest(_ context.Context, ar *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	kc.seq++
	req := &kcAuthRequest{
		id: fmt.Sprintf("req-%d", kc.seq), clientID: ar.ClientID, redirect: ar.RedirectURI, state: ar.State,
		nonce: ar.Nonce, scopes: ar.Scopes, respType: ar.ResponseType, respMode: ar.ResponseMode, userID: userID,
		prompt: ar.Prompt,
	}
	if ar.CodeChallenge != "" {
		req.challenge = &oidc.CodeChallenge{Challenge: ar.CodeChallenge, Method: ar.CodeChallengeMethod}
	}
	kc.reqs[req.id] = req
	return req, nil
}

func (kc *Provider) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	if r, ok := kc.reqs[id]; ok {
		return r, nil
	}
	return nil, errors.New("auth request not found")
}

func (kc *Provider) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	if r, ok := kc.reqs[kc.codes[code]]; ok {
		return r, nil
	}
	return nil, errors.New("code invalid or already used")
}

func (kc *Provider) SaveAuthCode(_ context.Context, id, code string) error {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	kc.codes[code] = id
	return nil
}

// DeleteAuthRequest runs once a code is redeemed: a replayed code finds
// nothing.
func (kc *Provider) DeleteAuthRequest(_ context.Context, id string) error {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	delete(kc.reqs, id)
	for c, rid := range kc.codes {
		if rid == id {
			delete(kc.codes, c)
		}
	}
	return nil
}

func (kc *Provider) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	kc.seq++
	return fmt.Sprintf("at-%d", kc.seq), time.Now().Add(tokenLifetime), nil
}

func (kc *Provider) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	kc.seq++
	at := fmt.Sprintf("at-%d", kc.seq)
	rt := &kcRefresh{token: fmt.Sprintf("rt-%d-%s", kc.seq, rand.Text()), userID: req.GetSubject(), scopes: req.GetScopes()}
	switch r := req.(type) {
	case *kcAuthRequest:
		rt.clientID, rt.sid, rt.authTime, rt.offline = r.clientID, r.sid, r.authTime, r.offline()
	case *kcRefresh:
		rt.clientID, rt.sid, rt.authTime, rt.offline = r.clientID, r.sid, r.authTime, r.offline
		if !kc.KeepRefresh {
			delete(kc.Refreshes, current) // rotation, like Keycloak's "Revoke Refresh Token"
		}
	default:
		return "", "", time.Time{}, errors.New("unsupported request")
	}
	kc.Refreshes[rt.token] = rt
	return at, rt.token, time.Now().Add(tokenLifetime), nil
}

// TokenRequestByRefreshToken refuses, like Keycloak, a disabled user or a
// session that was ended: the OP answers invalid_grant.
func (kc *Provider) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	rt, ok := kc.Refreshes[token]
	if !ok {
		return nil, errors.New("refresh token not found")
	}
	if u := kc.users[rt.userID]; u == nil || u.Disabled {
		return nil, errors.New("user disabled")
	}
	if kc.ended[rt.sid] && !rt.offline {
		return nil, errors.New("session not active")
	}
	cp := *rt
	return &cp, nil
}

func (kc *Provider) TerminateSessionFromRequest(_ context.Context, req *op.EndSessionRequest) (string, error) {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	if req.IDTokenHintClaims != nil {
		if sid, ok := req.IDTokenHintClaims.Claims["sid"].(string); ok {
			kc.ended[sid] = true
		}
	}
	return req.RedirectURI, nil
}

func (kc *Provider) TerminateSession(_ context.Context, userID, clientID string) error {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	for _, rt := range kc.Refreshes {
		if rt.userID == userID {
			kc.ended[rt.sid] = true
		}
	}
	return nil
}

// RevokeToken ends a refresh or offline token (RFC 7009, Keycloak's
// /protocol/openid-connect/revoke).
func (kc *Provider) RevokeToken(_ context.Context, token, _, clientID string) *oidc.Error {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	if rt, ok := kc.Refreshes[token]; ok && rt.clientID == clientID {
		delete(kc.Refreshes, token)
		kc.revocations++
	}
	return nil
}

// offlineTokens counts the user's live offline tokens.
// OfflineTokenValues are the offline tokens the provider has issued and
// not revoked, for a test that looks for them where they must not be.
func (kc *Provider) OfflineTokenValues() []string {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	var out []string
	for tok, rt := range kc.Refreshes {
		if rt.offline {
			out = append(out, tok)
		}
	}
	return out
}

func (kc *Provider) OfflineTokens(username string) int {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	n := 0
	for _, rt := range kc.Refreshes {
		if u := kc.users[rt.userID]; rt.offline && u != nil && u.Username == username {
			n++
		}
	}
	return n
}

// signOutAll ends every session of a user. Without offline it is an admin
// ending the user's browser sessions one by one; with offline, the user's
// offline tokens stop too, as after Keycloak's admin "Sign out" of the user
// (UserResource.logout sets a not-before time, and TokenManager refuses a
// refresh token issued before it as "Stale token": offline ones included)
// or a revoked offline session.
func (kc *Provider) SignOutAll(username string, offline bool) {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	for tok, rt := range kc.Refreshes {
		if u := kc.users[rt.userID]; u == nil || u.Username != username {
			continue
		}
		kc.ended[rt.sid] = true
		if offline && rt.offline {
			delete(kc.Refreshes, tok)
		}
	}
	for sid, uid := range kc.sso {
		if u := kc.users[uid]; u != nil && u.Username == username {
			kc.ended[sid] = true
		}
	}
}

// deleteUser removes an account.
func (kc *Provider) DeleteUser(username string) {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	for id, u := range kc.users {
		if u.Username == username {
			delete(kc.users, id)
		}
	}
}

func (kc *Provider) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	if rt, ok := kc.Refreshes[token]; ok {
		return rt.userID, rt.token, nil
	}
	return "", "", op.ErrInvalidRefreshToken
}

func (kc *Provider) SigningKey(context.Context) (op.SigningKey, error) {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	return kcPrivate{kc.Keys[0]}, nil
}

func (kc *Provider) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

// KeySet publishes only the current key, as after a rotation where the old
// key was removed: verifiers must fetch the new one.
func (kc *Provider) KeySet(context.Context) ([]op.Key, error) {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	return []op.Key{kcPublic{kc.Keys[0]}}, nil
}

func (kc *Provider) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if id != ClientID {
		return nil, errors.New("client not found")
	}
	return kcClient{id: id, domain: kc.domain}, nil
}

func (kc *Provider) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if id != ClientID || secret != Secret {
		return errors.New("invalid client credentials")
	}
	return nil
}

func (kc *Provider) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token like Keycloak's default
// mappers: email, names, groups (full path) and the session id.
func (kc *Provider) SetUserinfoFromRequest(_ context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, _ []string) error {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	u := kc.users[req.GetSubject()]
	if u == nil {
		return errors.New("user not found")
	}
	ui.Subject = u.ID
	ui.Email = u.Email
	ui.EmailVerified = oidc.Bool(u.EmailVerified)
	ui.Name = u.Name
	ui.PreferredUsername = u.Username
	ui.AppendClaims("groups", append([]string{}, u.Groups...))
	switch r := req.(type) {
	case *kcAuthRequest:
		ui.AppendClaims("sid", r.sid)
	case *kcRefresh:
		ui.AppendClaims("sid", r.sid)
	}
	return nil
}

func (kc *Provider) SetUserinfoFromToken(context.Context, *oidc.UserInfo, string, string, string) error {
	return errors.New("userinfo not supported here")
}

func (kc *Provider) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("introspection not supported here")
}

// GetPrivateClaimsFromScopes fills the JWT access token: roles, as
// Keycloak puts them only here by default, plus groups and azp.
func (kc *Provider) GetPrivateClaimsFromScopes(_ context.Context, userID, clientID string, _ []string) (map[string]any, error) {
	kc.Mu.Lock()
	defer kc.Mu.Unlock()
	u := kc.users[userID]
	if u == nil {
		return nil, errors.New("user not found")
	}
	ra := map[string]any{}
	for c, roles := range u.ClientRoles {
		ra[c] = map[string]any{"roles": append([]string{}, roles...)}
	}
	return map[string]any{
		"azp":             clientID,
		"typ":             "Bearer",
		"realm_access":    map[string]any{"roles": append([]string{"offline_access", "default-roles-home"}, u.RealmRoles...)},
		"resource_access": ra,
		"groups":          append([]string{}, u.Groups...),
	}, nil
}

func (kc *Provider) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("not supported")
}

func (kc *Provider) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("not supported")
}

func (kc *Provider) Health(context.Context) error { return nil }

var _ op.Storage = (*Provider)(nil)
