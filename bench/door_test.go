package bench

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gatehouse/proxy"
	"gatehouse/ratelimit"
	"gatehouse/routes"
)

// BenchmarkDoorSmallGET is a 1 KiB GET through the Cloudflare door over
// loopback keep-alive connections, rate limiting on but never hit, on the
// direct path and on the ReverseProxy path (figures include the client and
// backend in this process; compare the two in the same run). Run with
// -cpuprofile/-memprofile to see what the hot path costs.
func BenchmarkDoorSmallGET(b *testing.B) {
	b.Run("direct", func(b *testing.B) { benchDoorSmallGET(b, false) })
	b.Run("reverseproxy", func(b *testing.B) { benchDoorSmallGET(b, true) })
}

func benchDoorSmallGET(b *testing.B, reverseProxyOnly bool) {
	body := strings.Repeat("x", 1024)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}))
	defer backend.Close()
	cfg, _, diags := routes.Parse([]byte(fmt.Sprintf(`domain = "example.com"
limit {
  rate  = "1000000/s"
  burst = 1000000
}
route "app" {
  backend = %q
  cloudflare {
    host   = "app"
    access = "app"
  }
}
`, backend.URL)), "bench.hcl")
	if cfg == nil {
		b.Fatal(diags)
	}
	gw := proxy.New(routes.Compile(cfg), proxy.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Limits: ratelimit.NewRegistry(100_000),
		ReverseProxyOnly: reverseProxyOnly,
	})
	door := httptest.NewServer(gw.Door(routes.Cloudflare))
	defer door.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", door.URL+"/1k", nil)
			req.Host = "app.example.com"
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
