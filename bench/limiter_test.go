// Package bench holds gatehouse's benchmarks. Speed is measured here, never
// asserted in tests: run
//
//	go test -run '^$' -bench . -benchmem ./bench
package bench

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"gatehouse/ratelimit"
)

func addr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// BenchmarkLimiterDecision is one rate-limit decision (Allow + Done) with
// 1, 10k and 1M distinct clients cycling through a store capped at 100k.
func BenchmarkLimiterDecision(b *testing.B) {
	for _, clients := range []int{1, 10_000, 1_000_000} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			reg := ratelimit.NewRegistry(100_000)
			l := reg.Limiter("route/bench", ratelimit.Rule{Rate: 1e9, Burst: 1e9, Concurrent: 64}, nil)
			keys := make([]ratelimit.Key, min(clients, 1<<20))
			for i := range keys {
				keys[i] = ratelimit.ClientKey("", addr(i))
			}
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := keys[i%len(keys)]
				l.Done(k, l.Allow(k, now), 200, now)
			}
		})
	}
}

// BenchmarkLimiterParallel is the same decision from every core at once:
// the store is sharded, so there is no global lock to queue on.
func BenchmarkLimiterParallel(b *testing.B) {
	reg := ratelimit.NewRegistry(100_000)
	l := reg.Limiter("route/bench", ratelimit.Rule{Rate: 1e9, Burst: 1e9}, nil)
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k := ratelimit.ClientKey("", addr(i%10_000))
			l.Done(k, l.Allow(k, now), 200, now)
			i++
		}
	})
}

// BenchmarkFloodHeap sends one request from each of 1M distinct clients
// and reports the heap in use afterwards and the tracked count, against a
// cap of 100k clients.
func BenchmarkFloodHeap(b *testing.B) {
	for range b.N {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		reg := ratelimit.NewRegistry(100_000)
		l := reg.Limiter("route/bench", ratelimit.Rule{Rate: 10, Burst: 20}, nil)
		now := time.Now()
		for i := range 1_000_000 {
			k := ratelimit.ClientKey("", addr(i))
			l.Done(k, l.Allow(k, now), 200, now)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/(1<<20), "heap-MiB")
		b.ReportMetric(float64(reg.Store().Len()), "tracked")
		b.ReportMetric(float64(reg.Store().Evictions()), "evictions")
		runtime.KeepAlive(reg)
	}
}
