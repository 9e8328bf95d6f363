package signin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"gatehouse/routes"
)

// troubleError is a renewal that failed because the provider is down or
// broken, not because it refused: the session is kept (the request gets
// 503 while the provider is down) rather than ended.
type troubleError struct{ err error }

func (e *troubleError) Error() string { return e.err.Error() }

func (e *troubleError) Unwrap() error { return e.err }

// refresh renews a session with its refresh token, once per session at a
// time (concurrent requests wait for the same answer). The new tokens go
// into memory, from where writeSession puts them in their cookie.
func (s *SignIn) refresh(ctx context.Context, sess *session, t tokens) (*session, error) {
	v, err, _ := s.refreshes.Do(sess.ID, func() (any, error) {
		now := s.now()
		if ns := s.recent.newer(sess, now); ns != nil {
			return ns, nil
		}
		ns, nt, err := s.doRefresh(ctx, sess, t)
		if err != nil {
			return nil, err
		}
		s.held.put(ns, nt, now)
		s.recent.put(ns, now)
		return ns, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*session), nil
}

func (s *SignIn) doRefresh(ctx context.Context, sess *session, t tokens) (*session, tokens, error) {
	p, v := s.verifiers()
	if p == nil {
		return nil, t, &troubleError{errors.New("provider not discovered")}
	}
	if t.Refresh == "" {
		return nil, t, errNoRefresh
	}
	octx, cancel := s.oauthContext(ctx)
	defer cancel()
	tok, err := s.oauth(p, "").TokenSource(octx, &oauth2.Token{RefreshToken: t.Refresh}).Token()
	if err != nil {
		if providerTrouble(err) {
			s.markDown(err)
			return nil, t, &troubleError{err}
		}
		return nil, t, err
	}
	ns := *sess
	ns.user = nil // the identity may change below
	ns.Checked = s.now().UnixNano()
	nt := tokens{Refresh: tok.RefreshToken, IDToken: t.IDToken, Checked: ns.Checked}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		// No new ID token: the identity stays as signed in.
		return &ns, nt, nil
	}
	idt, err := verifyIDToken(octx, v, raw, tok.AccessToken)
	if err != nil {
		return nil, t, fmt.Errorf("refreshed ID token: %w", err)
	}
	if idt.Subject != sess.Sub {
		return nil, t, errOtherSubject
	}
	id, err := s.tokenIdentity(octx, v, idt, tok.AccessToken)
	if err != nil {
		return nil, t, err
	}
	ns.Email, ns.Name, ns.Username, ns.Groups = id.Email, id.Name, id.Username, id.Groups
	if id.SID != "" {
		ns.SID = id.SID
	}
	nt.IDToken = raw
	return &ns, nt, nil
}

// recentRefreshes remembers the outcome of a refresh for a short while:
// a browser fires many requests with the old cookie before the new one
// arrives, and each must see the refreshed session instead of refreshing
// again (which fails where the provider rotates refresh tokens).
type recentRefreshes struct {
	mu  sync.RWMutex // read on every family request, written on renewal
	m   map[string]recentEntry
	max int
	ttl time.Duration
}

type recentEntry struct {
	s  *session
	at time.Time
}

func newRecent(max int, ttl time.Duration) *recentRefreshes {
	return &recentRefreshes{m: map[string]recentEntry{}, max: max, ttl: ttl}
}

func (rc *recentRefreshes) put(s *session, now time.Time) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.m) >= rc.max {
		for k, e := range rc.m {
			if now.Sub(e.at) > rc.ttl {
				delete(rc.m, k)
			}
		}
		for k := range rc.m {
			if len(rc.m) < rc.max {
				break
			}
			delete(rc.m, k)
		}
	}
	rc.m[s.ID] = recentEntry{s: s, at: now}
}

// newer returns a refreshed copy of s if one was made recently.
func (rc *recentRefreshes) newer(s *session, now time.Time) *session {
	rc.mu.RLock()
	defer rc.mu.RUnlock()
	e, ok := rc.m[s.ID]
	if !ok || now.Sub(e.at) > rc.ttl || e.s.Checked <= s.Checked || e.s.Sub != s.Sub {
		return nil
	}
	return e.s
}

var errNoRefresh = errors.New("no refresh token: sign in again")

var errOtherSubject = errors.New("refreshed ID token names another user")

// renewTrip is where Begin sends a request whose session is due for its
// check while this gatehouse lacks its tokens (it restarted since they were
// last seen): /.gatehouse/renew, which the tokens cookie is sent to, and
// back. "" when the request is not such a one, or cannot follow a
// redirect: a WebSocket upgrade, which browsers fail on a redirect, is
// answered as a request without a session is (401); a /.gatehouse/
// request (never a loop: it carries the tokens cookie, or has none); one
// whose address renew would not return to.
func (s *SignIn) renewTrip(r *http.Request, host string) string {
	if isUpgrade(r) || tokensSent(r) || strings.HasPrefix(routes.CleanPath(r.URL.Path), tokensPath) {
		return ""
	}
	sess, _ := s.readSession(nil, r)
	if sess == nil {
		return ""
	}
	now := s.now()
	if ns := s.recent.newer(sess, now); ns != nil {
		sess = ns
	}
	if judge(sess, now, s.cfg.RefreshInterval, s.rev.revoked(sess)) != sessionRefresh {
		return ""
	}
	if _, held := s.held.get(sess.ID); held {
		return ""
	}
	rd := r.URL.RequestURI()
	if !strings.HasPrefix(rd, "/") {
		return ""
	}
	if _, err := ReturnURL(rd, host, s.familyHost); err != nil {
		return ""
	}
	return renewPath + "?rd=" + url.QueryEscape(rd)
}

// isUpgrade reports whether r asks to switch protocols (a WebSocket,
// also over HTTP/2's extended CONNECT): such a request cannot follow a
// redirect.
func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" || r.Method == http.MethodConnect
}

// renew answers /.gatehouse/renew?rd=/path: the request's tokens cookie
// came with it (noteTokens took it in), so the session is renewed here if
// it is due, and both cookies are set; then the browser goes back to rd,
// with the same method and body (307). Whatever happened, the way back
// cannot lead here again: the tokens are in memory now, or the session
// without them is over (session ends it) and the request gets the answer
// of one without a session.
func (s *SignIn) renew(w http.ResponseWriter, r *http.Request, host string) {
	noStore(w)
	rd := r.URL.Query().Get("rd")
	if _, err := ReturnURL(rd, host, s.familyHost); err != nil || !strings.HasPrefix(rd, "/") {
		writePage(w, http.StatusBadRequest, "Not a return address",
			"That return address is not a page of this site, so gatehouse will not send you there.")
		return
	}
	s.session(w, r)
	redirect(w, rd, http.StatusTemporaryRedirect)
}

// redirect answers with a Location as given: http.Redirect would clean the
// path, and the request must come back to exactly the address it left.
func redirect(w http.ResponseWriter, location string, status int) {
	noStore(w)
	w.Header().Set("Location", location)
	w.WriteHeader(status)
}
