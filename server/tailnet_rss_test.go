package server

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vmRSS reads this process's resident set size from /proc.
func vmRSS(tb testing.TB) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	tb.Skip("no VmRSS")
	return 0
}

// BenchmarkTailnetNodeRSS measures what a tailnet node costs in memory:
// the process RSS with the gateway's shared node up, then with four more
// per-route nodes up and serving. Run:
//
//	go test -run '^$' -bench TailnetNodeRSS -benchtime 1x .
func BenchmarkTailnetNodeRSS(b *testing.B) {
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		control := startControl(b)
		controlURL := control.HTTPTestServer.URL
		issuer := newCertIssuer(b)
		admin := startPeer(b, ctx, controlURL, "laptop", nil, issuer.pool())
		backend := startBackend(b, identityBackend("svc"))
		runtime.GC()
		base := vmRSS(b)

		dir := b.TempDir()
		keyFile := writeAuthKey(b, dir)
		config := filepath.Join(dir, "routes.hcl")
		names := []string{"one", "two", "three", "four"}
		// The shared node alone (the routes use it, no nodes of their own).
		shared := ""
		for _, n := range names {
			shared += tailnetRoute(n, backend, "members", "node = false")
		}
		writeFile(b, config, tailnetConfig(controlURL, filepath.Join(dir, "state"), keyFile, []string{admin.login}, shared))
		gw := startTailnetGateway(b, config, issuer)
		admin.get(b, "https://gatehouse."+magicDNS+"/")
		runtime.GC()
		one := vmRSS(b)

		// Four more nodes, each proven up by an answer through it.
		perRoute := ""
		for _, n := range names {
			perRoute += tailnetRoute(n, backend, "members", "")
		}
		writeFile(b, config, tailnetConfig(controlURL, filepath.Join(dir, "state"), keyFile, []string{admin.login}, perRoute))
		if err := gw.waitReload(b); err != nil {
			b.Fatal(err)
		}
		for _, n := range names {
			if a := admin.get(b, "https://"+n+"."+magicDNS+"/"); a.status != 200 {
				b.Fatalf("%s: %d", n, a.status)
			}
		}
		runtime.GC()
		five := vmRSS(b)
		b.ReportMetric(one-base, "MiB-shared-node")
		b.ReportMetric((five-one)/float64(len(names)), "MiB-per-route-node")
		b.ReportMetric(five, "MiB-process-5-nodes")
		gw.stop()
		cancel()
	}
}
