package proxy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"gatehouse/auth"
	"gatehouse/proxy"
	"gatehouse/ratelimit"
	"gatehouse/routes"
)

// staticPeer names every tailnet peer the same member. It stands in for
// the tailnet door's WhoIs lookup; the tailnet door itself is tested
// against real tsnet nodes in tailnet/ and the main package.
type staticPeer struct{}

func (staticPeer) LookupPeer(context.Context) (*auth.PeerRecord, error) {
	return &auth.PeerRecord{Device: "laptop", Login: "alice@example.com"}, nil
}

// One limit on a route is one limit: requests through the tailnet door and
// the Cloudflare door draw from the same route-wide bucket.
func TestLimitIsSharedAcrossDoors(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer backend.Close()
	cfg, _, diags := routes.Parse([]byte(fmt.Sprintf(`domain = "example.com"
route "jellyseerr" {
  backend = %q
  tailnet {
    access = "members"
  }
  cloudflare {
    host   = "request"
    access = "app"
  }
  limit {
    total_rate  = "1/min"
    total_burst = 4
  }
}
`, backend.URL)), "t.hcl")
	if cfg == nil {
		t.Fatal(diags)
	}
	gw := proxy.New(routes.Compile(cfg), proxy.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Limits: ratelimit.NewRegistry(1000),
	})
	cf := httptest.NewServer(gw.Door(routes.Cloudflare))
	defer cf.Close()
	tn := httptest.NewUnstartedServer(gw.TailnetHandler("jellyseerr", true))
	tn.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return auth.WithPeerLookup(ctx, staticPeer{})
	}
	tn.Start()
	defer tn.Close()

	get := func(url, host string) int {
		req, _ := http.NewRequest("GET", url+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var got []int
	for range 3 {
		got = append(got, get(cf.URL, "request.example.com"), get(tn.URL, "jellyseerr.tail-scale.ts.net"))
	}
	want := "[200 200 200 200 429 429]"
	if fmt.Sprint(got) != want {
		t.Fatalf("cloudflare/tailnet alternating: %v, want %v (one bucket of 4 for both doors)", got, want)
	}
}
