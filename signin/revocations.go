package signin

import (
	"sync"
	"time"
)

// revocations is the server-side session record: it ends sessions whose
// cookies are otherwise self-contained. An entry says "every session of
// this provider session (sid), this user (sub) or this gateway session,
// created before this moment, is over". Logout and back-channel logout add
// entries; every session check consults them.
//
// Memory is bounded: an entry can only match cookies created before it,
// and those expire within the session lifetime, so entries older than that
// are dropped. If more than max entries are live at once, the oldest is
// dropped and the floor rises to its time: every session created before the
// floor is over. Overflow therefore signs people out; it never lets a
// revoked session back in.
type revocations struct {
	// RWMutex: every family request reads; only logouts write.
	mu    sync.RWMutex
	at    map[string]time.Time
	floor time.Time
	keep  time.Duration
	max   int
	// seen logout tokens (jti), so a replayed token is recognised.
	jti map[string]time.Time
}

func newRevocations(keep time.Duration, max int) *revocations {
	return &revocations{at: map[string]time.Time{}, jti: map[string]time.Time{}, keep: keep, max: max}
}

func (rv *revocations) revoke(key string, now time.Time) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if len(rv.at) >= rv.max {
		rv.pruneLocked(now)
	}
	if t, ok := rv.at[key]; !ok || now.After(t) {
		rv.at[key] = now
	}
}

func (rv *revocations) pruneLocked(now time.Time) {
	for k, t := range rv.at {
		if now.Sub(t) > rv.keep {
			delete(rv.at, k)
		}
	}
	for len(rv.at) >= rv.max {
		var oldest string
		var ot time.Time
		for k, t := range rv.at {
			if oldest == "" || t.Before(ot) {
				oldest, ot = k, t
			}
		}
		delete(rv.at, oldest)
		if ot.After(rv.floor) {
			rv.floor = ot
		}
	}
}

// revoked reports whether s was ended by an entry made after it began.
func (rv *revocations) revoked(s *session) bool {
	created := time.Unix(0, s.Created)
	rv.mu.RLock()
	defer rv.mu.RUnlock()
	if !created.After(rv.floor) && !rv.floor.IsZero() {
		return true
	}
	if len(rv.at) == 0 {
		return false // nothing was ever revoked: no keys to build
	}
	keys := [...]string{revokeSession + s.ID, revokeSID + s.SID, revokeSubject + s.Sub}
	if s.SID == "" {
		keys[1] = revokeNoSID + s.Sub
	}
	for _, k := range keys {
		if t, ok := rv.at[k]; ok && !created.After(t) {
			return true
		}
	}
	return false
}

// firstUse records a logout token id and reports whether it is new.
func (rv *revocations) firstUse(jti string, now time.Time, window time.Duration) bool {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	for k, t := range rv.jti {
		if now.Sub(t) > window {
			delete(rv.jti, k)
		}
	}
	if _, ok := rv.jti[jti]; ok {
		return false
	}
	if len(rv.jti) >= rv.max {
		return false // flooded: refuse rather than forget
	}
	rv.jti[jti] = now
	return true
}

const (
	revokeSID     = "sid:"
	revokeSubject = "sub:"
	revokeSession = "ses:"
	revokeNoSID   = "nosid:" // sessions of this subject that have no sid
)
