package server

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// limitedGateway runs a gateway on hcl and returns its door and metrics
// addresses.
func limitedGateway(t *testing.T, hcl string) (door, metricsAddr string) {
	t.Helper()
	g := startServerWith(t, hcl, Options{})
	return g.addr, g.metricsAddr
}

// statusBackend answers 401 on paths containing "login" or "album" and 200
// elsewhere.
func statusBackend() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "login") || strings.Contains(r.URL.Path, "album") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "ok")
	})
}

type reply struct {
	status     int
	retryAfter string
	body       string
}

func do(t *testing.T, addr, host, path string, hdr ...string) reply {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return reply{resp.StatusCode, resp.Header.Get("Retry-After"), string(b)}
}

func limitsConfig(backend, trusted string) string {
	return fmt.Sprintf(`domain = "example.com"
cloudflare {
  listen          = "127.0.0.1:1"
  trusted_proxies = [%q]
}
limit {
  rate  = "1/min"
  burst = 3
}
route "photos" {
  backend = %q
  cloudflare {
    host   = "photos"
    access = "app"
  }
  path "/api/auth/login" {
    limit {
      rate  = "10/min"
      burst = 10
    }
    ban {
      failures = 3
      window   = "10m"
      ban_time = "1h"
    }
  }
}
route "open" {
  backend = %q
  cloudflare {
    host   = "open"
    access = "app"
  }
  limit {
    rate  = "1000/s"
    burst = 1000
  }
}
`, trusted, backend, backend)
}

func TestRateLimitThroughTheDoor(t *testing.T) {
	backend := startBackend(t, statusBackend())
	door, metricsAddr := limitedGateway(t, limitsConfig(backend, "127.0.0.1/32"))
	client := func(ip string) []string { return []string{"CF-Connecting-IP", ip} }

	t.Run("burst then 429 with Retry-After", func(t *testing.T) {
		for i := range 3 {
			if r := do(t, door, "photos.example.com", "/", client("198.51.100.1")...); r.status != 200 {
				t.Fatalf("request %d of the burst: %d", i, r.status)
			}
		}
		r := do(t, door, "photos.example.com", "/", client("198.51.100.1")...)
		secs, _ := strconv.Atoi(r.retryAfter)
		// 1/min: the next token is a minute away at most.
		if r.status != 429 || secs < 1 || secs > 60 {
			t.Fatalf("over the limit: %d, Retry-After %q", r.status, r.retryAfter)
		}
	})
	t.Run("clients are independent", func(t *testing.T) {
		if r := do(t, door, "photos.example.com", "/", client("198.51.100.2")...); r.status != 200 {
			t.Fatalf("another client was limited: %d", r.status)
		}
	})
	t.Run("401 bursts off the login path ban nobody", func(t *testing.T) {
		c := client("198.51.100.3")
		for range 20 {
			do(t, door, "open.example.com", "/album/shared", c...)
		}
		if r := do(t, door, "open.example.com", "/", c...); r.status != 200 {
			t.Fatalf("after 401s outside login paths: %d", r.status)
		}
	})
	t.Run("failed logins ban the client from the route", func(t *testing.T) {
		c := client("198.51.100.4")
		for i := range 3 {
			if r := do(t, door, "photos.example.com", "/api/auth/login", c...); r.status != 401 {
				t.Fatalf("login attempt %d: %d", i, r.status)
			}
		}
		r := do(t, door, "photos.example.com", "/", c...)
		secs, _ := strconv.Atoi(r.retryAfter)
		if r.status != 429 || secs < 3000 || !strings.Contains(r.body, "failed sign-in") {
			t.Fatalf("banned client: %d Retry-After %q", r.status, r.retryAfter)
		}
		resp, err := http.Get("http://" + metricsAddr + "/bans")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `"client":"198.51.100.4"`) {
			t.Fatalf("ban list: %s", b)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{
			`gatehouse_requests_total{code="429",door="cloudflare",route="photos"}`,
			`gatehouse_requests_total{code="200",door="cloudflare",route="photos"}`,
			`gatehouse_ratelimit_rejections_total{reason="rate",route="photos"} 1`,
			`gatehouse_ratelimit_rejections_total{reason="banned",route="photos"} 1`,
			`gatehouse_bans_total{route="photos"} 1`,
			`gatehouse_ratelimit_clients`,
			`gatehouse_request_duration_seconds_bucket`,
		} {
			if !strings.Contains(string(b), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		// Never through the Cloudflare door.
		unknown := do(t, door, "nothing.example.com", "/")
		for _, host := range []string{"open.example.com", "nothing.example.com", "127.0.0.1", "localhost"} {
			r := do(t, door, host, "/metrics", client("198.51.100.9")...)
			if strings.Contains(r.body, "gatehouse_") {
				t.Errorf("/metrics through the door on %s served gatehouse's metrics", host)
			}
			if host != "open.example.com" && (r.status != 404 || r.body != unknown.body) {
				t.Errorf("/metrics through the door on %s: %d, not the unknown-host 404", host, r.status)
			}
		}
		if unknown.status != 404 {
			t.Fatalf("unknown host: %d", unknown.status)
		}
	})
}

// A client that is not a trusted proxy cannot mint fresh buckets by
// making up CF-Connecting-IP or X-Forwarded-For.
func TestSpoofedClientAddressMintsNoBuckets(t *testing.T) {
	backend := startBackend(t, statusBackend())
	door, _ := limitedGateway(t, limitsConfig(backend, "192.0.2.1/32"))
	statuses := []int{}
	for i := range 6 {
		ip := fmt.Sprintf("203.0.113.%d", i+1)
		statuses = append(statuses, do(t, door, "photos.example.com", "/", "CF-Connecting-IP", ip, "X-Forwarded-For", ip).status)
	}
	want := []int{200, 200, 200, 429, 429, 429}
	if fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Fatalf("statuses with spoofed addresses: %v, want %v", statuses, want)
	}
}

// A slowloris client is cut at read_header_timeout while others are
// served.
func TestSlowlorisIsCut(t *testing.T) {
	backend := startBackend(t, statusBackend())
	door, _ := limitedGateway(t, fmt.Sprintf(`domain = "example.com"
cloudflare {
  listen = "127.0.0.1:1"
}
server {
  read_header_timeout = "1s"
}
route "open" {
  backend = %q
  cloudflare {
    host   = "open"
    access = "app"
  }
}
`, backend))
	conn, err := net.Dial("tcp", door)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cut := make(chan error, 1)
	go func() {
		// Dribble a header byte now and then, never finishing.
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: open.example.com\r\n"); err != nil {
			cut <- err
			return
		}
		for {
			if _, err := io.WriteString(conn, "X"); err != nil {
				cut <- err
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	closed := make(chan struct{})
	go func() {
		// The server may say 400 before it hangs up; what matters is that
		// it hangs up.
		io.Copy(io.Discard, conn)
		close(closed)
	}()
	// Others are served meanwhile.
	for range 5 {
		if r := do(t, door, "open.example.com", "/"); r.status != 200 {
			t.Fatalf("a normal client during slowloris: %d", r.status)
		}
	}
	select {
	case <-closed:
	case <-time.After(30 * time.Second): // hang guard
		t.Fatal("the slowloris connection was never cut")
	}
}
