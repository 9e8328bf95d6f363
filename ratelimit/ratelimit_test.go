package ratelimit

import (
	"net/netip"
	"runtime"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestBurstThenRetryAfter(t *testing.T) {
	reg := NewRegistry(1000)
	l := reg.Limiter("route/a", Rule{Rate: 2, Burst: 3}, nil)
	k := ClientKey("", ip("198.51.100.7"))
	for i := range 3 {
		v := l.Allow(k, t0)
		if !v.OK {
			t.Fatalf("request %d of the burst refused", i)
		}
		l.Done(k, v, 200, t0)
	}
	v := l.Allow(k, t0)
	if v.OK {
		t.Fatal("fourth request inside the burst window allowed")
	}
	// At 2/s the next token is 500ms away; Retry-After rounds up to 1s.
	if v.RetryAfter < 500*time.Millisecond || RetryAfterSeconds(v.RetryAfter) != 1 {
		t.Fatalf("RetryAfter = %v", v.RetryAfter)
	}
	if v := l.Allow(k, t0.Add(500*time.Millisecond)); !v.OK {
		t.Fatal("refused after the announced wait")
	}
}

func TestClientsAreIndependentAndIPv6GroupsBy64(t *testing.T) {
	reg := NewRegistry(1000)
	l := reg.Limiter("route/a", Rule{Rate: 1, Burst: 1}, nil)
	a, b := ClientKey("", ip("198.51.100.1")), ClientKey("", ip("198.51.100.2"))
	if !l.Allow(a, t0).OK || l.Allow(a, t0).OK {
		t.Fatal("client a: want one allowed then refused")
	}
	if !l.Allow(b, t0).OK {
		t.Fatal("client b suffered for client a")
	}
	// Two addresses in one /64 are one client; another /64 is another.
	c1, c2 := ClientKey("", ip("2001:db8:1:2::1")), ClientKey("", ip("2001:db8:1:2:ffff::9"))
	other := ClientKey("", ip("2001:db8:1:3::1"))
	if c1 != c2 || c1 == other {
		t.Fatal("IPv6 keys are not grouped by /64")
	}
	if !l.Allow(c1, t0).OK || l.Allow(c2, t0).OK || !l.Allow(other, t0).OK {
		t.Fatal("IPv6 /64 grouping not applied by the limiter")
	}
	// An identity outranks the address: two users behind one address.
	u1, u2 := ClientKey("family:alice", ip("198.51.100.1")), ClientKey("family:bob", ip("198.51.100.1"))
	if !l.Allow(u1, t0).OK || !l.Allow(u2, t0).OK {
		t.Fatal("users behind one address share a bucket")
	}
}

func TestConcurrentCapAndTotal(t *testing.T) {
	reg := NewRegistry(1000)
	l := reg.Limiter("route/a", Rule{Concurrent: 2, TotalRate: 1, TotalBurst: 3}, nil)
	k := ClientKey("", ip("198.51.100.1"))
	v1, v2 := l.Allow(k, t0), l.Allow(k, t0)
	if !v1.OK || !v2.OK || l.Allow(k, t0).OK {
		t.Fatal("concurrency cap of 2 not enforced")
	}
	l.Done(k, v1, 200, t0)
	if v := l.Allow(k, t0); !v.OK {
		t.Fatal("a finished request did not free its slot")
	}
	// The total bucket (3) is now spent by one client; everyone waits.
	if l.Allow(ClientKey("", ip("198.51.100.2")), t0).OK {
		t.Fatal("total limit did not protect the backend from a second client")
	}
}

func TestBansOnlyCountLoginFailuresAndExpire(t *testing.T) {
	reg := NewRegistry(1000)
	ban := &BanRule{Failures: 3, Window: time.Minute, BanFor: 10 * time.Minute, Statuses: []int{401}}
	login := reg.Limiter("route/immich/path/api/auth/login", Rule{}, ban)
	api := reg.Limiter("route/immich", Rule{}, nil)
	k := ClientKey("", ip("203.0.113.5"))

	// A burst of 401s elsewhere (Immich shared albums do this) bans nobody.
	for range 50 {
		v := api.Allow(k, t0)
		if api.Done(k, v, 401, t0) {
			t.Fatal("401 outside a login path banned the client")
		}
	}
	// Successful logins do not count either.
	for range 5 {
		login.Done(k, login.Allow(k, t0), 200, t0)
	}
	banned := false
	for i := range 3 {
		banned = login.Done(k, login.Allow(k, t0), 401, t0.Add(time.Duration(i)*time.Second))
	}
	if !banned {
		t.Fatal("three failed logins within the window did not ban")
	}
	v := login.Allow(k, t0.Add(5*time.Second))
	if v.OK || !v.Banned || v.RetryAfter <= 9*time.Minute {
		t.Fatalf("banned client: %+v", v)
	}
	if list := reg.Bans(t0.Add(5 * time.Second)); len(list) != 1 || list[0].Client != "203.0.113.5" {
		t.Fatalf("ban list: %+v", list)
	}
	if v := login.Allow(k, t0.Add(11*time.Minute)); !v.OK {
		t.Fatal("ban did not expire")
	}
	if list := reg.Bans(t0.Add(11 * time.Minute)); len(list) != 0 {
		t.Fatalf("expired ban still listed: %+v", list)
	}
	// Failures spread wider than the window never add up to a ban.
	k2 := ClientKey("", ip("203.0.113.6"))
	for i := range 10 {
		if login.Done(k2, login.Allow(k2, t0), 401, t0.Add(time.Duration(i)*31*time.Second)) {
			t.Fatal("slow failures banned the client")
		}
	}
}

func TestReloadKeepsBucketsOfUnchangedRules(t *testing.T) {
	reg := NewRegistry(1000)
	k := ClientKey("", ip("198.51.100.1"))
	l := reg.Limiter("route/a", Rule{Rate: 1, Burst: 1}, nil)
	l.Allow(k, t0)
	if same := reg.Limiter("route/a", Rule{Rate: 1, Burst: 1}, nil); same != l || same.Allow(k, t0).OK {
		t.Fatal("an unchanged rule lost its buckets on reload")
	}
	if changed := reg.Limiter("route/a", Rule{Rate: 5, Burst: 5}, nil); changed == l || !changed.Allow(k, t0).OK {
		t.Fatal("a changed rule kept the old limiter")
	}
}

// A flood of a million distinct addresses keeps the tracked count under
// the cap, counts the evictions, and idle entries are freed afterwards.
func TestFloodStaysUnderCap(t *testing.T) {
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 60_000
	}
	const maxClients = 10_000
	reg := NewRegistry(maxClients)
	l := reg.Limiter("route/a", Rule{Rate: 10, Burst: 20}, nil)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if i >= 1<<24 {
			t.Fatal("test generates only 2^24 addresses")
		}
		k := ClientKey("", a)
		l.Done(k, l.Allow(k, t0), 200, t0)
	}
	st := reg.Store()
	if got := st.Len(); got > maxClients {
		t.Fatalf("tracked %d clients, cap %d", got, maxClients)
	}
	if st.Evictions() == 0 {
		t.Fatal("no evictions counted at the cap")
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("%d distinct clients: tracked %d, evicted %d, heap growth %.1f MiB", n, st.Len(), st.Evictions(), float64(growth)/(1<<20))
	if growth > 64<<20 {
		t.Fatalf("heap grew %d MiB for a cap of %d clients", growth>>20, maxClients)
	}
	// Once their buckets would be full again (burst/rate = 2s), a sweep
	// forgets them all.
	st.now = func() time.Time { return t0.Add(3 * time.Second) }
	st.Sweep()
	if got := st.Len(); got != 0 {
		t.Fatalf("%d idle entries survived the sweep", got)
	}
}

// TestUnban lifts one client's ban and its failures, and only that one.
func TestUnban(t *testing.T) {
	reg := NewRegistry(1000)
	ban := &BanRule{Failures: 2, Window: time.Minute, BanFor: 10 * time.Minute, Statuses: []int{401}}
	login := reg.Limiter("route/wiki/path/login", Rule{}, ban)
	a, b := ClientKey("", ip("203.0.113.7")), ClientKey("", ip("203.0.113.8"))
	for _, k := range []Key{a, b} {
		for range 2 {
			login.Done(k, login.Allow(k, t0), 401, t0)
		}
	}
	if n := len(reg.Bans(t0)); n != 2 {
		t.Fatalf("%d bans, want 2", n)
	}
	if reg.Unban("route/wiki/path/login", "203.0.113.9", t0) || reg.Unban("route/other", "203.0.113.7", t0) {
		t.Error("Unban of a client or scope without a ban reported one")
	}
	if !reg.Unban("route/wiki/path/login", "203.0.113.7", t0) {
		t.Fatal("Unban found no ban")
	}
	if v := login.Allow(a, t0); !v.OK {
		t.Errorf("unbanned client refused: %+v", v)
	}
	if list := reg.Bans(t0); len(list) != 1 || list[0].Client != "203.0.113.8" {
		t.Errorf("bans after unban: %+v", list)
	}
	// Its failures are forgotten: one more is not a ban yet.
	if login.Done(a, login.Allow(a, t0), 401, t0) {
		t.Error("one failure after the unban banned again")
	}
}
