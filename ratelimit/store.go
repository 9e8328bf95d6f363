// Package ratelimit keeps per-client token buckets, concurrency counts and
// login-failure bans in bounded memory: a cap on tracked clients, idle
// entries freed as soon as forgetting them changes nothing, the oldest
// evicted at the cap. The store is sharded, so no lock is global.
package ratelimit

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Key identifies a client within a scope (one limit, one ban list).
type Key struct {
	scope uint32
	addr  [16]byte // the client address, IPv6 grouped by /64
	id    string   // a known identity, which takes precedence over the address
}

// ClientKey builds a client's key: an identity when one is known (a
// signed-in user, a tailnet node), else its address. IPv6 clients are
// grouped by /64, since one subscriber gets a whole /64 to roam in.
func ClientKey(identity string, addr netip.Addr) Key {
	if identity != "" {
		return Key{id: identity}
	}
	var k Key
	addr = addr.Unmap()
	if addr.Is4() {
		a4 := addr.As4()
		copy(k.addr[:], a4[:])
		k.addr[15] = 4 // distinguishes 1.2.3.4 from the IPv6 prefix 0102:0304::
	} else if addr.Is6() {
		a16 := addr.As16()
		copy(k.addr[:8], a16[:8])
		k.addr[15] = 6
	}
	return k
}

// String shows a key for the admin's ban list.
func (k Key) String() string {
	switch {
	case k.id != "":
		return k.id
	case k.addr[15] == 4:
		return netip.AddrFrom4([4]byte(k.addr[:4])).String()
	case k.addr[15] == 6:
		var a [16]byte
		copy(a[:8], k.addr[:8])
		return netip.PrefixFrom(netip.AddrFrom16(a), 64).String()
	}
	return "unknown"
}

// entry is everything tracked about one client in one scope.
type entry struct {
	key        Key
	lim        *rate.Limiter // nil when the scope has no per-client rate
	inflight   atomic.Int32
	fails      int32
	failStart  int64 // unix nanoseconds
	bannedTill int64 // unix nanoseconds
	lastSeen   int64 // unix nanoseconds
	// idleAfter is how long after lastSeen forgetting the entry changes
	// nothing: the bucket would be full again and no ban or failure
	// window is running.
	idleAfter  time.Duration
	prev, next *entry // LRU list, most recent at the head
}

const numShards = 64

// Store holds every tracked client of every scope under one cap.
type Store struct {
	shards      [numShards]shard
	capPerShard int
	evictions   atomic.Uint64
	freed       atomic.Uint64
	now         func() time.Time
}

type shard struct {
	mu         sync.Mutex
	m          map[Key]*entry
	head, tail *entry
}

// NewStore makes a store that tracks at most maxClients entries.
func NewStore(maxClients int) *Store {
	s := &Store{capPerShard: max(maxClients/numShards, 1), now: time.Now}
	for i := range s.shards {
		s.shards[i].m = make(map[Key]*entry)
	}
	return s
}

// Len is the number of tracked entries.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Evictions counts entries dropped at the cap while still in use.
func (s *Store) Evictions() uint64 { return s.evictions.Load() }

// Freed counts idle entries forgotten because they no longer mattered.
func (s *Store) Freed() uint64 { return s.freed.Load() }

func (k Key) hash() uint32 {
	// FNV-1a over the key; cheap and allocation-free.
	h := uint32(2166136261) ^ k.scope
	for _, b := range k.addr {
		h = (h ^ uint32(b)) * 16777619
	}
	for i := 0; i < len(k.id); i++ {
		h = (h ^ uint32(k.id[i])) * 16777619
	}
	return h
}

// with runs f on the client's entry, creating it if needed, under the
// entry's shard lock.
func (s *Store) with(k Key, now time.Time, create func(e *entry), f func(e *entry)) {
	sh := &s.shards[k.hash()%numShards]
	nowNs := now.UnixNano()
	sh.mu.Lock()
	e := sh.m[k]
	if e == nil {
		sh.sweepLocked(nowNs, s, 8)
		if len(sh.m) >= s.capPerShard {
			// At the cap the least recently seen client goes.
			sh.removeLocked(sh.tail)
			s.evictions.Add(1)
		}
		e = &entry{key: k}
		create(e)
		sh.m[k] = e
	} else {
		sh.unlinkLocked(e)
	}
	sh.pushFrontLocked(e)
	e.lastSeen = nowNs
	f(e)
	sh.mu.Unlock()
}

// lookup runs f on an existing entry only.
func (s *Store) lookup(k Key, f func(e *entry)) {
	sh := &s.shards[k.hash()%numShards]
	sh.mu.Lock()
	if e := sh.m[k]; e != nil {
		f(e)
	}
	sh.mu.Unlock()
}

// sweepLocked frees idle entries from the cold end of the list, looking
// at no more than budget entries so an insert stays cheap. Entries with
// requests in flight or a running ban are never idle.
func (sh *shard) sweepLocked(nowNs int64, s *Store, budget int) {
	for e := sh.tail; e != nil && budget > 0; budget-- {
		prev := e.prev
		if nowNs-e.lastSeen >= int64(e.idleAfter) && e.inflight.Load() == 0 && e.bannedTill <= nowNs {
			sh.removeLocked(e)
			s.freed.Add(1)
		}
		e = prev
	}
}

// Sweep frees idle entries in every shard; run it periodically so memory
// returns after a flood even without new clients.
func (s *Store) Sweep() {
	nowNs := s.now().UnixNano()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.sweepLocked(nowNs, s, len(sh.m))
		sh.mu.Unlock()
	}
}

func (sh *shard) removeLocked(e *entry) {
	if e == nil {
		return
	}
	sh.unlinkLocked(e)
	delete(sh.m, e.key)
}

func (sh *shard) unlinkLocked(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else if sh.head == e {
		sh.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else if sh.tail == e {
		sh.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (sh *shard) pushFrontLocked(e *entry) {
	e.next = sh.head
	if sh.head != nil {
		sh.head.prev = e
	}
	sh.head = e
	if sh.tail == nil {
		sh.tail = e
	}
}
