package proxy_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gatehouse/proxy"
	"gatehouse/routes"
)

// The LAN door: same public hostnames as the Cloudflare door, its own
// access per route, the client from the socket (never from a header), and
// its own max_body.
func TestLANDoor(t *testing.T) {
	var seen http.Header
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "read %d", n)
	}))
	defer backend.Close()
	cfg, _, diags := routes.Parse([]byte(fmt.Sprintf(`domain = "example.com"
lan {
  listen         = ["127.0.0.1:8443"]
  dns_token_file = "token"
}
route "photos" {
  backend  = %[1]q
  max_body = "10B"
  cloudflare {
    host   = "photos"
    access = "app"
  }
  lan {
    access   = "app"
    max_body = "1KiB"
  }
  path "/admin" {
    lan = "closed"
  }
}
route "radarr" {
  backend = %[1]q
  lan {
    host   = "radarr"
    access = "app"
  }
}
route "public" {
  backend = %[1]q
  cloudflare {
    host   = "public"
    access = "app"
  }
}
route "family" {
  backend = %[1]q
  lan {
    host   = "family"
    access = "family"
  }
}
`, backend.URL)), "t.hcl")
	if cfg == nil {
		t.Fatal(diags)
	}
	gw := proxy.New(routes.Compile(cfg), proxy.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer gw.Close()
	lan := httptest.NewTLSServer(gw.Door(routes.LAN))
	defer lan.Close()
	cf := httptest.NewServer(gw.Door(routes.Cloudflare))
	defer cf.Close()

	do := func(srv *httptest.Server, host, path, body string) (int, string) {
		t.Helper()
		method := "GET"
		if body != "" {
			method = "POST"
		}
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Host = host
		// A LAN client claiming another address and plain HTTP: neither
		// is believed on this door.
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		req.Header.Set("CF-Connecting-IP", "203.0.113.7")
		req.Header.Set("X-Forwarded-Proto", "http")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	seen = nil
	if code, _ := do(lan, "photos.example.com", "/", ""); code != 200 {
		t.Fatalf("photos on the LAN: %d", code)
	}
	if got := seen.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the socket's address 127.0.0.1", got)
	}
	if got := seen.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto = %q, want https (the LAN door is TLS)", got)
	}
	if seen.Get("Cf-Connecting-Ip") != "" {
		t.Errorf("CF-Connecting-IP reached the backend: %q", seen.Get("Cf-Connecting-Ip"))
	}

	// Invariant 1: each route only through the doors its row names.
	for _, c := range []struct {
		srv        *httptest.Server
		door, host string
		path       string
		want       int
	}{
		{lan, "lan", "radarr.example.com", "/", 200},
		{cf, "cloudflare", "radarr.example.com", "/", 404},
		{lan, "lan", "public.example.com", "/", 404},
		{cf, "cloudflare", "public.example.com", "/", 200},
		{lan, "lan", "photos.example.com", "/admin/x", 404},
		{cf, "cloudflare", "photos.example.com", "/admin/x", 200},
		// Family without sign-in fails closed on the LAN door too.
		{lan, "lan", "family.example.com", "/", 503},
	} {
		if code, _ := do(c.srv, c.host, c.path, ""); code != c.want {
			t.Errorf("%s %s%s: %d, want %d", c.door, c.host, c.path, code, c.want)
		}
	}

	// max_body per door: the tunnel's limit on cloudflare, more at home.
	upload := strings.Repeat("x", 100)
	code, page := do(cf, "photos.example.com", "/upload", upload)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(page, "At home the same upload works") {
		t.Errorf("cloudflare upload: %d %q, want 413 pointing at the LAN door", code, page)
	}
	if code, body := do(lan, "photos.example.com", "/upload", upload); code != 200 || body != "read 100" {
		t.Errorf("LAN upload: %d %q, want 200 read 100", code, body)
	}
	if code, _ := do(lan, "photos.example.com", "/upload", strings.Repeat("x", 2000)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("LAN upload over its max_body: %d, want 413", code)
	}
}
