package signin

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gatehouse/auth"
)

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

// cookieWriter sets and clears gatehouse's cookies with fixed attributes:
// Secure, HttpOnly, SameSite=Lax, Path=/.
type cookieWriter struct {
	names cookieNames
}

func (c cookieWriter) set(w http.ResponseWriter, name, value, domain string, maxAge time.Duration) {
	ck := &http.Cookie{
		Name: name, Value: value, Path: "/", Domain: domain,
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

// writeSessionValue stores a sealed session in as many chunks as it needs
// and deletes chunks a longer earlier value left behind in the browser.
func (c cookieWriter) writeSessionValue(w http.ResponseWriter, r *http.Request, value string, maxAge time.Duration) error {
	n := (len(value) + chunkSize - 1) / chunkSize
	if n > maxChunks {
		return errors.New("session too large for its cookies")
	}
	for i := 0; i < n; i++ {
		end := min((i+1)*chunkSize, len(value))
		c.set(w, chunkName(c.names.session, i), value[i*chunkSize:end], c.names.domain, maxAge)
	}
	for i := n; i < maxChunks; i++ {
		if r == nil {
			break
		}
		if _, err := r.Cookie(chunkName(c.names.session, i)); err == nil {
			c.set(w, chunkName(c.names.session, i), "", c.names.domain, 0)
		}
	}
	return nil
}

// clearSession deletes every chunk the request carried.
func (c cookieWriter) clearSession(w http.ResponseWriter, r *http.Request) {
	for i := 0; i < maxChunks; i++ {
		if _, err := r.Cookie(chunkName(c.names.session, i)); err == nil {
			c.set(w, chunkName(c.names.session, i), "", c.names.domain, 0)
		}
	}
}

func chunkName(base string, i int) string {
	if i == 0 {
		return base
	}
	return base + "-" + strconv.Itoa(i)
}

// readSessionValue joins the chunks of the session cookie. A cookie name
// sent twice (two scopes) makes the value ambiguous: it is refused.
func readSessionValue(r *http.Request, n cookieNames) string {
	// One parse of the Cookie header for every chunk.
	cookies := r.Cookies()
	var first string
	var b strings.Builder
	for i := 0; i < maxChunks; i++ {
		name := chunkName(n.session, i)
		found := 0
		var v string
		for _, c := range cookies {
			if c.Name == name {
				found++
				v = c.Value
			}
		}
		if found != 1 {
			if found > 1 {
				return ""
			}
			break
		}
		if i == 0 {
			first = v
			continue
		}
		if i == 1 {
			b.WriteString(first)
		}
		b.WriteString(v)
	}
	if b.Len() == 0 {
		return first // one chunk: no copy
	}
	return b.String()
}

// Cookie size limits: browsers keep about 4096 bytes per cookie (name and
// attributes included), so a session is split into chunks; more than
// maxChunks is refused (then the ID token is dropped, see writeSession).
const (
	chunkSize = 3800
	maxChunks = 4
)
