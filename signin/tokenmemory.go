package signin

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// tokenMemory holds the tokens of the sessions this gatehouse has seen,
// by session id, so an ordinary request renews its session without the
// tokens riding on it: the session cookie, sent with every request, stays
// small, and the tokens cookie goes only to /.gatehouse/. It is filled at
// sign-in, at every renewal, and whenever a tokens cookie arrives at a
// /.gatehouse/ endpoint (after a restart, through /.gatehouse/renew).
// Losing an entry costs one trip through that endpoint, so the bound is
// simple: past max entries those of ended sessions go, then the least
// recently renewed.
type tokenMemory struct {
	mu  sync.Mutex
	m   map[string]heldTokens
	max int
}

type heldTokens struct {
	tokens
	sub, sid string
	expires  int64 // the session's absolute end, unix nanoseconds
}

func newTokenMemory(max int) *tokenMemory {
	return &tokenMemory{m: map[string]heldTokens{}, max: max}
}

func (tm *tokenMemory) get(id string) (tokens, bool) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	e, ok := tm.m[id]
	return e.tokens, ok
}

// put keeps t for sess unless a later copy (by Checked) is held already:
// an older tokens cookie arriving after a renewal must not bring back a
// refresh token the provider has rotated away.
func (tm *tokenMemory) put(sess *session, t tokens, now time.Time) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if e, ok := tm.m[sess.ID]; ok && e.Checked > t.Checked {
		return
	}
	if _, ok := tm.m[sess.ID]; !ok && len(tm.m) >= tm.max {
		tm.pruneLocked(now)
	}
	tm.m[sess.ID] = heldTokens{tokens: t, sub: sess.Sub, sid: sess.SID, expires: sess.Expires}
}

// pruneLocked drops the entries of expired sessions, then the least
// recently renewed until an eighth of the room is free, so a full memory
// is not scanned on every sign-in.
func (tm *tokenMemory) pruneLocked(now time.Time) {
	for id, e := range tm.m {
		if e.expires <= now.UnixNano() {
			delete(tm.m, id)
		}
	}
	keep := tm.max - max(tm.max/8, 1)
	if len(tm.m) <= keep {
		return
	}
	ids := make([]string, 0, len(tm.m))
	for id := range tm.m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		ca, cb := tm.m[a].Checked, tm.m[b].Checked
		switch {
		case ca < cb:
			return -1
		case ca > cb:
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, id := range ids[:len(ids)-keep] {
		delete(tm.m, id)
	}
}

// forget drops what a revocation key (revokeSession, revokeSID,
// revokeSubject, revokeNoSID) names: an ended session's tokens are of no
// further use, and are not kept.
func (tm *tokenMemory) forget(key string) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	kind, v, _ := strings.Cut(key, ":")
	if kind+":" == revokeSession {
		delete(tm.m, v)
		return
	}
	for id, e := range tm.m {
		switch kind + ":" {
		case revokeSID:
			if e.sid == v {
				delete(tm.m, id)
			}
		case revokeSubject:
			if e.sub == v {
				delete(tm.m, id)
			}
		case revokeNoSID:
			if e.sub == v && e.sid == "" {
				delete(tm.m, id)
			}
		}
	}
}

func (tm *tokenMemory) size() int {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return len(tm.m)
}
