package signin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// flow is one sign-in in progress, sealed into a host-only cookie for the
// trip to the provider and back.
type flow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"` // PKCE code verifier (S256)
	Return   string `json:"r"` // absolute URL on a family host
	Host     string `json:"h"`
	Created  int64  `json:"c"`
	// Bind, when set, makes this the binding of a new device token to
	// the provider (grants.go): the subject who asked, and the device.
	Bind   string `json:"b,omitempty"`
	Device string `json:"d,omitempty"`
}

var errNonce = errors.New("the ID token's nonce does not match this sign-in")

// flowLifetime bounds a sign-in from redirect to callback.
const flowLifetime = 10 * time.Minute

// maxFlows bounds the sign-ins one browser can have open at once.
const maxFlows = 8

// Begin answers a family request without a session: a browser navigation
// is sent to sign in and comes back to the same URL; anything else (fetch,
// XHR, JSON clients, non-GET) gets 401 with a JSON body.
func (s *SignIn) Begin(w http.ResponseWriter, r *http.Request) {
	host := strings.ToLower(r.Host)
	if !s.Ready() {
		unavailable(w, r)
		return
	}
	if loc := s.renewTrip(r, host); loc != "" {
		redirect(w, loc, http.StatusTemporaryRedirect)
		return
	}
	if !IsNavigation(r) {
		unauthorized(w, host)
		return
	}
	ret, err := ReturnURL("https://"+host+r.URL.RequestURI(), host, s.familyHost)
	if err != nil {
		ret = "https://" + host + "/"
	}
	s.startFlow(w, r, host, flow{Return: ret}, false)
}

// login starts a sign-in explicitly: /.gatehouse/login?rd=/albums.
func (s *SignIn) login(w http.ResponseWriter, r *http.Request, host string) {
	ret, err := ReturnURL(r.URL.Query().Get("rd"), host, s.familyHost)
	if err != nil {
		writePage(w, http.StatusBadRequest, "Not a return address",
			"That return address is not on one of this server's sites, so sign-in will not send you there.")
		return
	}
	if !s.Ready() {
		unavailable(w, r)
		return
	}
	s.startFlow(w, r, host, flow{Return: ret}, false)
}

// startFlow sends the browser to the provider to sign in and come back to
// f.Return (f.Bind and f.Device set for a binding). promptLogin asks the provider for its login form even if it holds a
// session for the browser (OIDC prompt=login): signing in as someone else
// must not be answered by the account just left.
func (s *SignIn) startFlow(w http.ResponseWriter, r *http.Request, host string, f flow, promptLogin bool) {
	p, _ := s.verifiers()
	if p == nil {
		unavailable(w, r)
		return
	}
	f.State, f.Nonce, f.Verifier = randomString(), randomString(), oauth2.GenerateVerifier()
	f.Host, f.Created = host, s.now().UnixNano()
	// A browser that keeps starting sign-ins without finishing them loses
	// the old ones rather than collecting cookies.
	if open := openFlows(r); len(open) >= maxFlows {
		for _, name := range open {
			s.cw.set(w, name, "", "", 0)
		}
	}
	b, _ := json.Marshal(f)
	name := flowCookieName(f.State)
	val, err := s.keys.seal(purposeFlow, b, s.flowAD(name))
	if err != nil {
		s.log.Error("cannot seal the sign-in cookie", "err", err)
		writePage(w, http.StatusInternalServerError, "Sign-in failed", "Sign-in could not start. Try again.")
		return
	}
	s.cw.set(w, name, val, "", flowLifetime)
	opts := []oauth2.AuthCodeOption{oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)}
	if promptLogin {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"))
	}
	oc := s.oauth(p, host)
	if f.Bind != "" {
		oc.Scopes = bindScopes(s.cfg.Scopes)
	}
	url := oc.AuthCodeURL(f.State, opts...)
	noStore(w)
	http.Redirect(w, r, url, http.StatusFound)
}

func openFlows(r *http.Request) []string {
	var names []string
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, flowCookiePrefix) {
			names = append(names, c.Name)
		}
	}
	return names
}

func (s *SignIn) flowAD(name string) []byte {
	return []byte("flow\x00" + name + "\x00" + s.cfg.Issuer + "\x00" + s.cfg.ClientID)
}

// callback finishes a sign-in: the state must match the flow cookie this
// browser got when it left (so nobody can sign a victim into their own
// account), the code is exchanged with the PKCE verifier, the ID token is
// verified (signature, issuer, audience, expiry) and must carry the nonce.
// A new session replaces whatever session the browser had.
func (s *SignIn) callback(w http.ResponseWriter, r *http.Request, host string) {
	noStore(w)
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" || len(state) > 256 {
		badFlow(w)
		return
	}
	name := flowCookieName(state)
	c, err := r.Cookie(name)
	if err != nil {
		badFlow(w)
		return
	}
	// The flow is used up whatever happens next.
	s.cw.set(w, name, "", "", 0)
	var f flow
	pt, _, err := s.keys.open(purposeFlow, c.Value, s.flowAD(name))
	if err == nil {
		err = json.Unmarshal(pt, &f)
	}
	now := s.now()
	if err != nil || subtle.ConstantTimeCompare([]byte(f.State), []byte(state)) != 1 ||
		f.Host != host || now.Sub(time.Unix(0, f.Created)) > flowLifetime || f.Nonce == "" || f.Verifier == "" {
		s.log.Info("sign-in callback refused: state does not match this browser's sign-in", "host", host)
		s.outcome("refused")
		badFlow(w)
		return
	}
	if e := q.Get("error"); e != "" {
		s.log.Info("provider did not sign the user in", "error", e, "description", q.Get("error_description"))
		writePage(w, http.StatusForbidden, "Sign-in not completed",
			"The sign-in was not completed ("+htmlEscape(e)+`). <a href="`+htmlEscape(f.Return)+`">Try again</a>.`)
		return
	}
	code := q.Get("code")
	if code == "" {
		badFlow(w)
		return
	}
	p, v := s.verifiers()
	if p == nil || !s.Ready() {
		unavailable(w, r)
		return
	}
	octx, cancel := s.oauthContext(r.Context())
	defer cancel()
	tok, err := s.oauth(p, host).Exchange(octx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		if providerTrouble(err) {
			s.markDown(err)
			s.outcome("provider_error")
			unavailable(w, r)
			return
		}
		s.log.Info("provider refused the sign-in code", "err", err)
		s.outcome("refused")
		writePage(w, http.StatusBadRequest, "Sign-in failed",
			`The sign-in could not be completed (the code was refused: already used, or expired). <a href="`+htmlEscape(f.Return)+`">Try again</a>.`)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		s.log.Warn("provider sent no ID token; is \"openid\" in scopes?")
		writePage(w, http.StatusBadGateway, "Sign-in failed", "The sign-in provider did not say who you are.")
		return
	}
	if f.Bind != "" {
		s.finishBind(octx, w, r, host, v, raw, tok, f)
		return
	}
	sess, err := s.sessionFrom(octx, v, raw, tok, f.Nonce)
	if err != nil {
		s.log.Warn("sign-in refused", "err", err)
		s.outcome("refused")
		status, msg := http.StatusBadRequest, "The sign-in could not be verified."
		if err == errBadEmail {
			status, msg = http.StatusForbidden, "Your account's email address is not a single valid address, so it cannot be used here. Ask the administrator to correct it."
		}
		writePage(w, status, "Sign-in refused", msg+` <a href="`+htmlEscape(f.Return)+`">Try again</a>.`)
		return
	}
	s.held.put(sess, tokens{Refresh: tok.RefreshToken, IDToken: raw, Checked: sess.Checked}, now)
	if !s.writeSession(w, r, sess) {
		writePage(w, http.StatusInternalServerError, "Sign-in failed",
			"Your account has more groups than fit in a browser cookie. Ask the administrator to trim your groups.")
		return
	}
	s.outcome("signed_in")
	s.log.Info("signed in", "sub", sess.Sub, "email", sess.Email, "host", host)
	ret, err := ReturnURL(f.Return, host, s.familyHost)
	if err != nil {
		ret = "https://" + host + "/"
	}
	http.Redirect(w, r, ret, http.StatusSeeOther)
}

// verifyCodeIDToken verifies the ID token of a code exchange: as every ID
// token (verifyIDToken), and carrying this sign-in's nonce.
func verifyCodeIDToken(ctx context.Context, v *verifiers, raw string, tok *oauth2.Token, nonce string) (*oidc.IDToken, error) {
	idt, err := verifyIDToken(ctx, v, raw, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, errNonce
	}
	return idt, nil
}

// sessionFrom verifies the tokens of a code exchange and makes a new
// session of them.
func (s *SignIn) sessionFrom(ctx context.Context, v *verifiers, raw string, tok *oauth2.Token, nonce string) (*session, error) {
	idt, err := verifyCodeIDToken(ctx, v, raw, tok, nonce)
	if err != nil {
		return nil, err
	}
	id, err := s.tokenIdentity(ctx, v, idt, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	now := s.now()
	return &session{
		V:        sessionVersion,
		ID:       randomString(),
		Sub:      id.Subject,
		Email:    id.Email,
		Name:     id.Name,
		Username: id.Username,
		SID:      id.SID,
		Groups:   id.Groups,
		Created:  now.UnixNano(),
		Expires:  now.Add(s.cfg.SessionLifetime).UnixNano(),
		Checked:  now.UnixNano(),
	}, nil
}
