package signin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

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
