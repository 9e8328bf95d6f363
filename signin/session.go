package signin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// session is what the session cookie carries, sealed (encrypted and
// authenticated). Sessions are stateless: any gatehouse with the key file
// can check one, and a restart signs nobody out. What the server keeps is
// the revocation record (see revocations) and a short-lived cache of fresh
// refreshes.
type session struct {
	V        int      `json:"v"`
	ID       string   `json:"id"` // gatehouse session id, random per sign-in
	Sub      string   `json:"sub"`
	Email    string   `json:"em,omitempty"`
	Name     string   `json:"nm,omitempty"`
	Username string   `json:"un,omitempty"`
	SID      string   `json:"sid,omitempty"` // the provider's session id
	Groups   []string `json:"g,omitempty"`
	Created  int64    `json:"c"`  // unix nanoseconds: sign-in
	Expires  int64    `json:"x"`  // unix nanoseconds: absolute end
	Checked  int64    `json:"ck"` // unix nanoseconds: last confirmed by the provider
	Refresh  string   `json:"rt,omitempty"`
	IDToken  string   `json:"it,omitempty"` // kept for logout's id_token_hint
}

const sessionVersion = 1

// Cookie size limits: browsers keep about 4096 bytes per cookie (name and
// attributes included), so a session is split into chunks; more than
// maxChunks is refused (then the ID token is dropped, see writeSession).
const (
	chunkSize = 3800
	maxChunks = 4
)

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

func marshalSession(s *session) ([]byte, error) { return json.Marshal(s) }

func unmarshalSession(b []byte) (*session, error) {
	var s session
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	if s.V != sessionVersion || s.ID == "" || s.Sub == "" {
		return nil, errors.New("not a session")
	}
	return &s, nil
}

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

const (
	revokeSID     = "sid:"
	revokeSubject = "sub:"
	revokeSession = "ses:"
	revokeNoSID   = "nosid:" // sessions of this subject that have no sid
)

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
