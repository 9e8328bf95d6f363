package signin

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"gatehouse/page"
)

// logout: GET shows a button, POST (from a page of the same host) ends the
// session here and at the provider. Every gateway session of the same
// provider session ends with it, and the browser goes on to the provider's
// end_session_endpoint with id_token_hint and post_logout_redirect_uri, so
// the provider's own session (SSO) ends too.
func (s *SignIn) logout(w http.ResponseWriter, r *http.Request, host string) {
	noStore(w)
	if r.Method != http.MethodPost {
		writePage(w, http.StatusOK, "Sign out",
			`<form method="post" action="`+logoutPath+`"><button type="submit">Sign out</button></form>`)
		return
	}
	if !sameOrigin(r, host) {
		writePage(w, http.StatusForbidden, "Not signed out", "Sign out from a page of this site.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	_ = r.ParseForm()
	if again := r.PostForm.Get("again"); again != "" {
		// "Sign in as someone else": after the provider has ended its
		// session too, signed-out starts a new sign-in back to here.
		if ret, err := ReturnURL(again, host, s.familyHost); err == nil {
			s.setAgain(w, host, ret)
		}
	}
	now := s.now()
	var hint string
	if sess, _ := s.readSession(nil, r); sess != nil {
		// The ID token is in memory, or in the tokens cookie this
		// request carries (/.gatehouse/ is its path).
		if t, ok := s.tokensOf(r, sess); ok {
			hint = t.IDToken
		}
		s.revoke(revokeSession+sess.ID, now)
		if sess.SID != "" {
			s.revoke(revokeSID+sess.SID, now)
		}
		s.log.Info("signed out", "sub", sess.Sub, "host", host)
		s.outcome("logout")
	}
	s.cw.clearSession(w, r)
	after := "https://" + host + signedOutPath
	p := s.prov.Load()
	if p == nil || p.endSession == "" {
		http.Redirect(w, r, after, http.StatusSeeOther)
		return
	}
	u, err := url.Parse(p.endSession)
	if err != nil {
		http.Redirect(w, r, after, http.StatusSeeOther)
		return
	}
	q := u.Query()
	if hint != "" {
		q.Set("id_token_hint", hint)
	}
	q.Set("client_id", s.cfg.ClientID)
	q.Set("post_logout_redirect_uri", after)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// againCookie carries the return address of "sign in as someone else"
// through the provider's logout: host-only and sealed, like a flow
// cookie, and as short-lived.
const againCookie = "__Host-gatehouse-again"

type againFlow struct {
	Return  string `json:"r"`
	Host    string `json:"h"`
	Created int64  `json:"c"`
}

func (s *SignIn) againAD() []byte {
	return []byte("again\x00" + againCookie + "\x00" + s.cfg.Issuer + "\x00" + s.cfg.ClientID)
}

func (s *SignIn) setAgain(w http.ResponseWriter, host, ret string) {
	b, _ := json.Marshal(againFlow{Return: ret, Host: host, Created: s.now().UnixNano()})
	val, err := s.keys.seal(purposeFlow, b, s.againAD())
	if err != nil {
		s.log.Error("cannot seal the sign-in-again cookie", "err", err)
		return
	}
	s.cw.set(w, againCookie, val, "", flowLifetime)
}

// signedOut is where the provider sends the browser after logout. After
// "sign in as someone else" it starts that sign-in, with prompt=login,
// once: the cookie that asked for it is used up here, so a browser that
// comes back signed in as the same account sees the page that offered
// the choice, not another round.
func (s *SignIn) signedOut(w http.ResponseWriter, r *http.Request, host string) {
	noStore(w)
	var af againFlow
	if c, err := r.Cookie(againCookie); err == nil {
		s.cw.set(w, againCookie, "", "", 0)
		pt, _, err := s.keys.open(purposeFlow, c.Value, s.againAD())
		if err == nil {
			err = json.Unmarshal(pt, &af)
		}
		if err != nil || af.Host != host || s.now().Sub(time.Unix(0, af.Created)) > flowLifetime {
			af = againFlow{}
		}
	}
	ret, err := ReturnURL(af.Return, host, s.familyHost)
	if af.Return == "" || err != nil {
		writePage(w, http.StatusOK, "Signed out", `You are signed out. <a href="/">Sign in again</a>.`)
		return
	}
	if !s.Ready() {
		unavailable(w, r)
		return
	}
	s.startFlow(w, r, host, flow{Return: ret}, true)
}

var (
	errStaleLogout    = errors.New("logout token is not recent (iat)")
	errReplayedLogout = errors.New("logout token was already used (jti)")
)

// Logout tokens older than this, or this far in the future, are refused;
// ids of accepted ones are remembered as long to refuse replays.
const logoutTokenWindow = 5 * time.Minute

// backchannel ends every session a provider's logout_token names: by
// provider session (sid) when it has one, else every session of the user
// (sub). The token must be signed by the provider, for this client, carry
// the back-channel logout event and no nonce, be recent and not replayed.
func (s *SignIn) backchannel(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	_, v := s.verifiers()
	if v == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	raw := r.PostForm.Get("logout_token")
	if raw == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "logout_token missing"})
		return
	}
	lt, err := v.id.VerifyLogout(r.Context(), raw)
	now := s.now()
	if err == nil {
		switch {
		case lt.IssuedAt.IsZero() || now.Sub(lt.IssuedAt) > logoutTokenWindow || lt.IssuedAt.Sub(now) > logoutTokenWindow:
			err = errStaleLogout
		case !s.rev.firstUse(lt.TokenID, now, 2*logoutTokenWindow):
			err = errReplayedLogout
		}
	}
	if err != nil {
		s.log.Warn("back-channel logout refused", "err", err)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "logout_token refused"})
		return
	}
	if lt.SessionID != "" {
		s.revoke(revokeSID+lt.SessionID, now)
		if lt.Subject != "" {
			// Sessions whose ID token carried no sid cannot be told
			// apart: end all of the user's.
			s.revoke(revokeNoSID+lt.Subject, now)
		}
	} else {
		s.revoke(revokeSubject+lt.Subject, now)
	}
	s.log.Info("back-channel logout", "sub", lt.Subject, "sid", lt.SessionID)
	s.outcome("backchannel_logout")
	w.WriteHeader(http.StatusOK)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	page.WriteJSON(w, status, append(b, '\n'))
}
