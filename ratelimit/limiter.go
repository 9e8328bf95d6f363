package ratelimit

import (
	"math"
	"sort"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rule is one limit: a per-client token bucket, an optional bucket shared
// by all clients (to protect a weak backend from everyone at once), and an
// optional cap on one client's concurrent requests.
type Rule struct {
	Rate       float64 // per client, requests per second; 0: none
	Burst      int
	TotalRate  float64 // all clients together; 0: none
	TotalBurst int
	Concurrent int // per client; 0: none
}

// BanRule bans a client from a scope after Failures failed attempts
// within Window, for BanFor.
type BanRule struct {
	Failures int
	Window   time.Duration
	BanFor   time.Duration
	Statuses []int // response codes that count as a failure
}

// Limiter enforces one Rule (and maybe one BanRule) for one scope: a
// route, or a path rule of a route. A scope is one limit however many
// doors and hosts reach it.
type Limiter struct {
	Name  string
	rule  Rule
	ban   *BanRule
	scope uint32
	store *Store
	total *rate.Limiter
	idle  time.Duration
}

// Verdict is the answer to one request.
type Verdict struct {
	OK bool
	// RetryAfter is how long the client should wait when !OK.
	RetryAfter time.Duration
	// Banned is set when the client is banned, not merely fast.
	Banned bool
	entry  *entry
}

// Registry builds limiters over one store and keeps a scope's buckets
// across reloads as long as its rule does not change.
type Registry struct {
	store  *Store
	mu     sync.Mutex
	next   uint32
	scopes map[string]*Limiter
}

// NewRegistry makes a registry whose store tracks at most maxClients.
func NewRegistry(maxClients int) *Registry {
	return &Registry{store: NewStore(maxClients), scopes: map[string]*Limiter{}}
}

// Store is the registry's client store.
func (g *Registry) Store() *Store { return g.store }

// Limiter returns the limiter for a named scope, reusing the running one
// (and its clients' buckets) when the rule is unchanged.
func (g *Registry) Limiter(name string, r Rule, ban *BanRule) *Limiter {
	g.mu.Lock()
	defer g.mu.Unlock()
	if l, ok := g.scopes[name]; ok && l.rule == r && banEqual(l.ban, ban) {
		return l
	}
	g.next++
	l := &Limiter{Name: name, rule: r, ban: ban, scope: g.next, store: g.store}
	if r.TotalRate > 0 {
		l.total = rate.NewLimiter(rate.Limit(r.TotalRate), max(r.TotalBurst, 1))
	}
	// A bucket left alone for burst/rate is full again: forgetting it then
	// changes nothing.
	if r.Rate > 0 {
		l.idle = time.Duration(float64(max(r.Burst, 1)) / r.Rate * float64(time.Second))
	}
	if ban != nil {
		l.idle = max(l.idle, ban.Window)
	}
	g.scopes[name] = l
	return l
}

func banEqual(a, b *BanRule) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Failures != b.Failures || a.Window != b.Window || a.BanFor != b.BanFor || len(a.Statuses) != len(b.Statuses) {
		return false
	}
	for i := range a.Statuses {
		if a.Statuses[i] != b.Statuses[i] {
			return false
		}
	}
	return true
}

// Allow decides one request of client k. When it returns OK, the caller
// must call Done with the verdict once the request has finished.
func (l *Limiter) Allow(k Key, now time.Time) Verdict {
	k.scope = l.scope
	var v Verdict
	nowNs := now.UnixNano()
	l.store.with(k, now, l.init, func(e *entry) {
		if e.bannedTill > nowNs {
			v.RetryAfter = time.Duration(e.bannedTill - nowNs)
			v.Banned = true
			return
		}
		if l.rule.Concurrent > 0 && e.inflight.Load() >= int32(l.rule.Concurrent) {
			v.RetryAfter = time.Second
			return
		}
		if e.lim != nil {
			r := e.lim.ReserveN(now, 1)
			if d := r.DelayFrom(now); !r.OK() || d > 0 {
				r.CancelAt(now)
				v.RetryAfter = max(d, time.Second)
				return
			}
		}
		v.OK = true
		e.inflight.Add(1)
		v.entry = e
	})
	if v.OK && l.total != nil {
		r := l.total.ReserveN(now, 1)
		if d := r.DelayFrom(now); !r.OK() || d > 0 {
			r.CancelAt(now)
			v.entry.inflight.Add(-1)
			v.OK, v.entry, v.RetryAfter = false, nil, max(d, time.Second)
		}
	}
	return v
}

// Banned reports whether client k is banned in this scope, without
// tracking it if it is not known. Routes check every ban scope of theirs on
// every request, so a client banned on the login path is banned from the
// whole route.
func (l *Limiter) Banned(k Key, now time.Time) (bool, time.Duration) {
	if l.ban == nil {
		return false, 0
	}
	k.scope = l.scope
	var till int64
	l.store.lookup(k, func(e *entry) { till = e.bannedTill })
	if d := till - now.UnixNano(); d > 0 {
		return true, time.Duration(d)
	}
	return false, 0
}

func (l *Limiter) init(e *entry) {
	if l.rule.Rate > 0 {
		e.lim = rate.NewLimiter(rate.Limit(l.rule.Rate), max(l.rule.Burst, 1))
	}
	e.idleAfter = l.idle
}

// Done ends a request admitted by Allow. status is the response code,
// which counts toward a ban when this scope has a ban rule.
func (l *Limiter) Done(k Key, v Verdict, status int, now time.Time) (banned bool) {
	if v.entry != nil {
		v.entry.inflight.Add(-1)
	}
	if l.ban == nil || !l.ban.counts(status) {
		return false
	}
	k.scope = l.scope
	nowNs := now.UnixNano()
	l.store.with(k, now, l.init, func(e *entry) {
		if nowNs-e.failStart > int64(l.ban.Window) {
			e.fails, e.failStart = 0, nowNs
		}
		e.fails++
		if int(e.fails) >= l.ban.Failures {
			e.bannedTill = nowNs + int64(l.ban.BanFor)
			e.fails, e.failStart = 0, nowNs
			banned = true
		}
	})
	return banned
}

func (b *BanRule) counts(status int) bool {
	for _, s := range b.Statuses {
		if s == status {
			return true
		}
	}
	return false
}

// Ban is one banned client, for the admin's list.
type Ban struct {
	Scope  string    `json:"scope"`
	Client string    `json:"client"`
	Until  time.Time `json:"until"`
}

// Bans lists the clients banned right now.
func (g *Registry) Bans(now time.Time) []Ban {
	g.mu.Lock()
	names := map[uint32]string{}
	for name, l := range g.scopes {
		names[l.scope] = name
	}
	g.mu.Unlock()
	nowNs := now.UnixNano()
	var out []Ban
	for i := range g.store.shards {
		sh := &g.store.shards[i]
		sh.mu.Lock()
		for k, e := range sh.m {
			if e.bannedTill > nowNs {
				out = append(out, Ban{Scope: names[k.scope], Client: k.String(), Until: time.Unix(0, e.bannedTill)})
			}
		}
		sh.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Until.Before(out[j].Until) })
	return out
}

// RetryAfterSeconds rounds a wait up to whole seconds for Retry-After.
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// Unban lifts the ban of client (as Ban.Client names it) in scope, and
// forgets its failures so the next one does not ban it again at once. It
// reports whether there was such a ban.
func (g *Registry) Unban(scope, client string, now time.Time) bool {
	g.mu.Lock()
	l := g.scopes[scope]
	g.mu.Unlock()
	if l == nil {
		return false
	}
	nowNs := now.UnixNano()
	found := false
	for i := range g.store.shards {
		sh := &g.store.shards[i]
		sh.mu.Lock()
		for k, e := range sh.m {
			if k.scope == l.scope && e.bannedTill > nowNs && k.String() == client {
				e.bannedTill, e.fails, e.failStart = 0, 0, 0
				found = true
			}
		}
		sh.mu.Unlock()
	}
	return found
}
