package signin

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"gatehouse/auth"
)

// Session returns the signed-in family user of the request, or nil. A
// session due for its check is renewed with the refresh token first, and
// its new cookies set on w; an ended one is cleared. A session due for its
// check whose tokens this gatehouse does not hold (it restarted since) is
// not renewed here and comes back nil, cookie kept: Begin then sends the
// request through /.gatehouse/renew, where the tokens cookie is.
func (s *SignIn) Session(w http.ResponseWriter, r *http.Request) *auth.FamilyUser {
	sess := s.session(w, r)
	if sess == nil {
		return nil
	}
	if sess.user != nil {
		return sess.user
	}
	return sess.familyUser()
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
		s.held.forget(revokeSession + sess.ID)
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
		toks, ok := s.tokensOf(r, sess)
		if !ok && !tokensSent(r) {
			// Neither in memory nor on this request, whose path the
			// tokens cookie is not sent to. Unrenewed, the session
			// does not pass (a user disabled at the provider is out
			// within refresh_interval, whatever the restart); Begin
			// sends the request through /.gatehouse/renew, or refuses
			// what cannot follow a redirect (a WebSocket upgrade).
			return nil
		}
		// On a /.gatehouse/ request without them the browser has none:
		// the session cannot be renewed (errNoRefresh) and is over.
		ns, err := s.refresh(r.Context(), sess, toks)
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
			s.revoke(revokeSession+sess.ID, now)
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

// readSession opens the session cookie; reseal reports that it should be
// sealed again: with the current key, or into the two cookies of today's
// version (a version 1 cookie, whose tokens go into memory here). A
// cookie that does not open is cleared (w nil: left alone).
func (s *SignIn) readSession(w http.ResponseWriter, r *http.Request) (sess *session, reseal bool) {
	val := readChunked(r.Header["Cookie"], s.names.session)
	if val == "" {
		return nil, false
	}
	if e, ok := s.cache.get(val); ok {
		if e.legacy != nil {
			s.held.put(e.sess, *e.legacy, s.now())
		}
		return e.sess, e.reseal
	}
	var legacy *tokens
	pt, old, err := s.keys.open(purposeSession, val, s.ad)
	if err == nil {
		sess, legacy, err = unmarshalSession(pt)
	}
	if err != nil {
		s.log.Debug("session cookie refused", "err", err)
		if w != nil {
			s.cw.clearSession(w, r)
		}
		return nil, false
	}
	reseal = old || legacy != nil
	// Made once per cookie value: every request with it shares one.
	sess.user = sess.familyUser()
	if legacy != nil {
		s.held.put(sess, *legacy, s.now())
	}
	s.cache.put(val, cachedSession{sess: sess, reseal: reseal, legacy: legacy})
	return sess, reseal
}

// tokensOf finds a session's tokens: in memory, else in the tokens cookie
// of the request (sent to /.gatehouse/ only), which memory then keeps.
func (s *SignIn) tokensOf(r *http.Request, sess *session) (tokens, bool) {
	if t, ok := s.held.get(sess.ID); ok {
		return t, true
	}
	return s.learnTokens(r, sess)
}

// learnTokens opens the request's tokens cookie for sess and keeps its
// tokens in memory (unless memory holds later ones); it returns what
// memory holds then.
func (s *SignIn) learnTokens(r *http.Request, sess *session) (tokens, bool) {
	val := readChunked(r.Header["Cookie"], s.names.tokens)
	if val == "" {
		return tokens{}, false
	}
	pt, _, err := s.keys.open(purposeTokens, val, s.tokensAD(sess.ID))
	var t *tokens
	if err == nil {
		t, err = unmarshalTokens(pt)
	}
	if err != nil {
		s.log.Debug("tokens cookie refused", "err", err)
		return tokens{}, false
	}
	s.held.put(sess, *t, s.now())
	return s.held.get(sess.ID)
}

// noteTokens is every /.gatehouse/ endpoint's first step: a tokens cookie
// of the request's session that memory lacks (gatehouse restarted since
// it was set) is taken in.
func (s *SignIn) noteTokens(r *http.Request) {
	if sess, _ := s.readSession(nil, r); sess != nil {
		if _, ok := s.held.get(sess.ID); !ok {
			s.learnTokens(r, sess)
		}
	}
}

// tokensSent reports whether a browser sends the tokens cookie with r:
// cookie paths are matched against the path as the browser wrote it.
func tokensSent(r *http.Request) bool {
	return strings.HasPrefix(r.URL.EscapedPath(), tokensPath)
}

// revoke ends sessions (see revocations) and drops their tokens from
// memory.
func (s *SignIn) revoke(key string, now time.Time) {
	s.rev.revoke(key, now)
	s.held.forget(key)
}

// sessionAD binds a session cookie to this provider and client: a cookie
// from another configuration does not open.
func (s *SignIn) sessionAD() []byte {
	return []byte("session\x00" + s.names.session + "\x00" + s.cfg.Issuer + "\x00" + s.cfg.ClientID)
}

// tokensAD binds a tokens cookie to its session as well: one session's
// tokens cookie (planted by another subdomain, say) does not open for
// another.
func (s *SignIn) tokensAD(id string) []byte {
	return []byte("tokens\x00" + s.names.tokens + "\x00" + s.cfg.Issuer + "\x00" + s.cfg.ClientID + "\x00" + id)
}

// writeSession stores a session in its cookie, and the tokens memory holds
// for it in the tokens cookie (a response may set a cookie for another
// path, so an ordinary request's renewal sets both). A session too large
// for its cookies keeps only the groups some route of the table asks for;
// it reports false if even that does not fit.
func (s *SignIn) writeSession(w http.ResponseWriter, r *http.Request, sess *session) bool {
	left := time.Unix(0, sess.Expires).Sub(s.now())
	ok := s.writeSessionCookie(w, r, sess, left)
	if t, held := s.held.get(sess.ID); held && ok {
		s.writeTokensCookie(w, r, sess, t, left)
	}
	return ok
}

func (s *SignIn) writeSessionCookie(w http.ResponseWriter, r *http.Request, sess *session, left time.Duration) bool {
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var b []byte
		if b, err = marshalSession(sess); err == nil {
			var val string
			if val, err = s.keys.seal(purposeSession, b, s.ad); err == nil {
				if err = s.cw.writeChunks(w, r, s.names.session, "/", val, left); err == nil {
					return true
				}
			}
		}
		s.log.Warn("session too large for its cookies; keeping only the groups routes ask for", "sub", sess.Sub, "groups", len(sess.Groups))
		cp := *sess
		cp.Groups = s.usedGroups(sess.Groups)
		sess = &cp
	}
	s.log.Error("cannot store the session cookie", "sub", sess.Sub, "err", err)
	return false
}

// writeTokensCookie stores a session's tokens. Tokens too large for their
// cookies give up the logout hint (the ID token; memory keeps it while
// gatehouse runs).
func (s *SignIn) writeTokensCookie(w http.ResponseWriter, r *http.Request, sess *session, t tokens, left time.Duration) {
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var b []byte
		if b, err = marshalTokens(&t); err == nil {
			var val string
			if val, err = s.keys.seal(purposeTokens, b, s.tokensAD(sess.ID)); err == nil {
				if err = s.cw.writeChunks(w, r, s.names.tokens, tokensPath, val, left); err == nil {
					return
				}
			}
		}
		s.log.Warn("tokens too large for their cookies; after a restart logout will not carry id_token_hint", "sub", sess.Sub)
		t.IDToken = ""
	}
	s.log.Error("cannot store the tokens cookie: the session renews while gatehouse runs, and must sign in again after a restart",
		"sub", sess.Sub, "err", err)
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

// StripCookies removes gatehouse's own cookies from a request about to be
// forwarded: backends never see the session.
func (s *SignIn) StripCookies(h http.Header) {
	vals := h["Cookie"]
	if len(vals) == 0 {
		return
	}
	out, changed := stripCookieLines(vals)
	switch {
	case !changed:
	case len(out) == 0:
		delete(h, "Cookie")
	default:
		h["Cookie"] = out
	}
}

// cookieWriter sets and clears gatehouse's cookies with fixed attributes:
// Secure, HttpOnly, SameSite=Lax, Path=/ (the tokens cookie:
// Path=/.gatehouse/).
type cookieWriter struct {
	names cookieNames
}

func (c cookieWriter) set(w http.ResponseWriter, name, value, domain string, maxAge time.Duration) {
	c.setPath(w, name, value, "/", domain, maxAge)
}

func (c cookieWriter) setPath(w http.ResponseWriter, name, value, path, domain string, maxAge time.Duration) {
	ck := &http.Cookie{
		Name: name, Value: value, Path: path, Domain: domain,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	}
	if maxAge > 0 {
		ck.MaxAge = int(maxAge / time.Second)
		if ck.MaxAge < 1 {
			ck.MaxAge = 1
		}
	} else {
		ck.MaxAge = -1 // "Max-Age=0": delete now
	}
	w.Header().Add("Set-Cookie", ck.String())
}

// writeChunks stores a sealed value under base in as many chunks as it
// needs, and deletes the chunks a longer earlier value left behind in the
// browser: those the request carried, or, where the request's path keeps
// the browser from sending them (the tokens cookie on an ordinary
// request), every chunk past the last.
func (c cookieWriter) writeChunks(w http.ResponseWriter, r *http.Request, base, path, value string, maxAge time.Duration) error {
	n := (len(value) + chunkSize - 1) / chunkSize
	if n > maxChunks {
		return errors.New("too large for its cookies")
	}
	for i := 0; i < n; i++ {
		end := min((i+1)*chunkSize, len(value))
		c.setPath(w, chunkName(base, i), value[i*chunkSize:end], path, c.names.domain, maxAge)
	}
	if r == nil {
		return nil
	}
	_, sent := chunkValues(r.Header["Cookie"], base)
	unseen := path != "/" && !tokensSent(r)
	for i := n; i < maxChunks; i++ {
		if sent[i] > 0 || unseen {
			c.setPath(w, chunkName(base, i), "", path, c.names.domain, 0)
		}
	}
	return nil
}

// clearSession deletes every chunk of the session cookie the request
// carried, and the tokens cookie: its chunks the request carried, or all
// of them where the request's path keeps the browser from sending them.
func (c cookieWriter) clearSession(w http.ResponseWriter, r *http.Request) {
	_, sent := chunkValues(r.Header["Cookie"], c.names.session)
	for i := 0; i < maxChunks; i++ {
		if sent[i] > 0 {
			c.set(w, chunkName(c.names.session, i), "", c.names.domain, 0)
		}
	}
	_, sent = chunkValues(r.Header["Cookie"], c.names.tokens)
	unseen := !tokensSent(r)
	for i := 0; i < maxChunks; i++ {
		if sent[i] > 0 || unseen {
			c.setPath(w, chunkName(c.names.tokens, i), "", tokensPath, c.names.domain, 0)
		}
	}
}

// Cookie size limits: browsers keep about 4096 bytes per cookie (name and
// attributes included), so a cookie's value is split into chunks; more
// than maxChunks is refused (see writeSessionCookie, writeTokensCookie).
const (
	chunkSize = 3800
	maxChunks = 4
)
