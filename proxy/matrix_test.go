package proxy_test

import (
	"bytes"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gatehouse/routes"
)

// shipped is the shipped routes.hcl served by a Cloudflare door, with every
// backend replaced by an echo backend that names its route.
type shipped struct {
	*door
	backends map[string]*echoBackend
}

func startShipped(t *testing.T) *shipped {
	t.Helper()
	return startShippedEdited(t, func(src string) string { return src })
}

// startShippedEdited serves the shipped routes.hcl after edit: a variant
// of the shipped table that a documented recipe produces.
func startShippedEdited(t *testing.T, edit func(string) string) *shipped {
	t.Helper()
	raw, err := os.ReadFile("../routes.hcl")
	if err != nil {
		t.Fatal(err)
	}
	src := edit(string(raw))
	orig := parseConfig(t, src)
	backends := map[string]*echoBackend{}
	var repl []string
	for _, r := range orig.Routes {
		b := newEchoBackend(t, r.Name)
		backends[r.Name] = b
		// Quoted, so that :80 can never match a prefix of :8080.
		repl = append(repl, strconv.Quote(r.Backend.Raw), strconv.Quote(b.url))
	}
	text := strings.NewReplacer(repl...).Replace(src)
	cfg := parseConfig(t, text)
	for _, r := range cfg.Routes {
		if got, want := r.Backend.Raw, backends[r.Name].url; got != want {
			t.Fatalf("route %s: backend %s was not replaced by the test backend %s", r.Name, got, want)
		}
	}
	if cfg.OIDC != nil {
		t.Fatal("the shipped routes.hcl has an oidc block; this test expects family routes to fail closed")
	}
	return &shipped{door: startDoor(t, cfg), backends: backends}
}

func (s *shipped) totalHits() int64 {
	var n int64
	for _, b := range s.backends {
		n += b.hits.Load()
	}
	return n
}

const unknownHost = "nope.example.com"

// notFoundRef is the unknown-host 404 without its Date line: the answer
// every unreachable host, route and path must give, byte for byte.
func notFoundRef(t *testing.T, d *door) []byte {
	t.Helper()
	raw := d.rawGet(t, unknownHost, "/")
	resp, body := parseRaw(t, raw)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown host: status %d, want 404: %q", resp.StatusCode, raw)
	}
	if !bytes.Contains(body, []byte("There is nothing here.")) {
		t.Fatalf("unknown host: not gatehouse's 404 page: %q", body)
	}
	if resp.Header.Get("Date") == "" {
		t.Fatalf("unknown host: no Date header; withoutDate would compare nothing away: %q", raw)
	}
	return withoutDate(raw)
}

type want int

const (
	reach     want = iota // the route's backend answers
	signIn                // family: 503 sign-in unavailable (no oidc block)
	hidden                // the unknown-host 404
	ambiguous             // 400: a path servers read differently, on every host
)

// TestShippedMatrixCloudflare walks the shipped accessibility matrix
// through the Cloudflare door.
func TestShippedMatrixCloudflare(t *testing.T) {
	s := startShipped(t)
	ref := notFoundRef(t, s.door)

	cases := []struct {
		host, path string
		want       want
		route      string
	}{
		{"photos.example.com", "/", signIn, "immich"},
		{"photos.example.com", "/photos/123", signIn, "immich"},
		{"photos.example.com", "/api/server/ping", reach, "immich"},
		{"PHOTOS.Example.COM", "/API/server/ping", reach, "immich"},
		{"photos.example.com:443", "/api/assets", reach, "immich"},
		{"photos.example.com.", "/api/assets", reach, "immich"},

		{"files.example.com", "/", signIn, "nextcloud"},
		{"files.example.com", "/index.php/apps/files", signIn, "nextcloud"},
		{"files.example.com", "/remote.php/dav/files/u/a.txt", reach, "nextcloud"},
		{"files.example.com", "/ocs/v2.php/cloud/capabilities", reach, "nextcloud"},

		{"passwords.example.com", "/", reach, "vaultwarden"},
		{"passwords.example.com", "/api/sync", reach, "vaultwarden"},
		{"passwords.example.com", "/identity/connect/token", reach, "vaultwarden"},
		{"passwords.example.com", "/administrator", reach, "vaultwarden"},
		{"passwords.example.com", "/admin", hidden, ""},
		{"passwords.example.com", "/admin/users/overview", hidden, ""},

		{"watch.example.com", "/", signIn, "jellyfin"},
		{"watch.example.com", "/web/index.html", signIn, "jellyfin"},
		{"watch.example.com", "/Users/AuthenticateByName", reach, "jellyfin"},
		{"watch.example.com", "/Items/1/Images/Primary", reach, "jellyfin"},
		{"watch.example.com", "/Videos/1/stream.mp4", reach, "jellyfin"},
		{"watch.example.com", "/Sessions/Playing", reach, "jellyfin"},
		{"watch.example.com", "/socket", reach, "jellyfin"},

		{"request.example.com", "/", signIn, "jellyseerr"},
		{"request.example.com", "/api/v1/status", signIn, "jellyseerr"},

		{"audiobooks.example.com", "/", signIn, "audiobookshelf"},
		{"audiobooks.example.com", "/audiobookshelf/", signIn, "audiobookshelf"},
		{"audiobooks.example.com", "/api/libraries", reach, "audiobookshelf"},
		{"audiobooks.example.com", "/login", reach, "audiobookshelf"},

		{"music.example.com", "/", signIn, "navidrome"},
		{"music.example.com", "/app/", signIn, "navidrome"},
		{"music.example.com", "/rest/ping.view", reach, "navidrome"},

		{"auth.example.com", "/", hidden, ""},
		{"auth.example.com", "/admin/", hidden, ""},
		{"auth.example.com", "/admin/master/console/", hidden, ""},
		{"auth.example.com", "/metrics", hidden, ""},
		{"auth.example.com", "/realms/home/protocol/openid-connect/auth", reach, "keycloak"},
		{"auth.example.com", "/resources/abc/login/keycloak.v2/css/styles.css", reach, "keycloak"},
		{"auth.example.com", "/robots.txt", reach, "keycloak"},

		// Tailnet-only routes by the names they have on the tailnet.
		{"radarr.example.com", "/", hidden, ""},
		{"radarr", "/", hidden, ""},
		{"radarr.tailnet-1234.ts.net", "/api/v3/movie", hidden, ""},
		// Bare labels of Cloudflare hosts, and lookalikes.
		{"photos", "/api/x", hidden, ""},
		{"photos.example.com.evil.test", "/api/x", hidden, ""},
		{"example.com", "/", hidden, ""},
		{"127.0.0.1", "/", hidden, ""},
	}
	// Every tailnet name, bare and under the domain, is unknown on the
	// Cloudflare door unless it happens to be a Cloudflare host.
	cfHosts := map[string]bool{}
	for _, r := range s.cfg.Routes {
		if dr := r.Doors[routes.Cloudflare]; dr != nil {
			cfHosts[dr.Host] = true
		}
	}
	tailnetNames := 0
	for _, r := range s.cfg.Routes {
		dr := r.Doors[routes.Tailnet]
		if dr == nil {
			continue
		}
		for _, h := range []string{dr.Host, dr.Host + ".example.com"} {
			if !cfHosts[h] {
				tailnetNames++
				cases = append(cases, struct {
					host, path string
					want       want
					route      string
				}{h, "/", hidden, ""})
			}
		}
	}
	if tailnetNames < 2*7 {
		t.Fatalf("only %d tailnet names to try; the shipped table has lost its tailnet routes?", tailnetNames)
	}

	// Every Cloudflare host of the shipped table must be covered above, so
	// a new route cannot join the matrix untested.
	covered := map[string]bool{}
	for _, c := range cases {
		covered[routes.NormalizeHost(c.host)] = true
	}
	for h := range cfHosts {
		if !covered[h] {
			t.Errorf("Cloudflare host %s of the shipped routes.hcl is not in this test's table", h)
		}
	}

	for _, c := range cases {
		before := s.totalHits()
		switch c.want {
		case reach:
			b := s.backends[c.route]
			n := b.hits.Load()
			resp, body := s.get(t, c.host, c.path, nil)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s%s: status %d, want 200 from %s: %q", c.host, c.path, resp.StatusCode, c.route, body)
				continue
			}
			got := decodeSeen(t, body)
			if got.Route != c.route || b.hits.Load() != n+1 || s.totalHits() != before+1 {
				t.Errorf("%s%s: answered by %q, want %q", c.host, c.path, got.Route, c.route)
			}
			if got.Path != c.path || got.Host != c.host {
				t.Errorf("%s%s: backend saw path %q host %q", c.host, c.path, got.Path, got.Host)
			}
			if p := got.Header.Get("X-Forwarded-Proto"); p != "https" {
				t.Errorf("%s%s: X-Forwarded-Proto %q, want https on the Cloudflare door", c.host, c.path, p)
			}
		case signIn:
			resp, body := s.get(t, c.host, c.path, http.Header{"Accept": {"text/html"}})
			if resp.StatusCode != http.StatusServiceUnavailable ||
				!bytes.Contains(body, []byte("Sign-in unavailable")) ||
				!bytes.Contains(body, []byte("<b>"+c.route+"</b>")) {
				t.Errorf("%s%s: status %d, want 503 sign-in unavailable naming %s: %q", c.host, c.path, resp.StatusCode, c.route, body)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("%s%s: 503 with Cache-Control %q, want no-store", c.host, c.path, cc)
			}
			// An API client (an app, fetch) gets JSON it can read.
			resp, body = s.get(t, c.host, c.path, http.Header{"Accept": {"application/json"}})
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Content-Type") != "application/json" ||
				!bytes.Contains(body, []byte(`"sign_in_unavailable"`)) || resp.Header.Get("Retry-After") == "" {
				t.Errorf("%s%s: API client got %d %q %q", c.host, c.path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
		case hidden:
			got := withoutDate(s.rawGet(t, c.host, c.path))
			if !bytes.Equal(got, ref) {
				t.Errorf("%s%s: answer differs from the unknown-host 404\n got: %q\nwant: %q", c.host, c.path, got, ref)
			}
		}
		if c.want != reach && s.totalHits() != before {
			t.Errorf("%s%s: a backend was reached", c.host, c.path)
		}
	}
}

// TestShippedMatrixHeadersOf404 spells out what "identical" covers: the
// header set of a closed path equals the unknown host's, key by key.
func TestShippedMatrixHeadersOf404(t *testing.T) {
	s := startShipped(t)
	_, _ = s.get(t, "passwords.example.com", "/", nil) // warm a keep-alive connection
	ref, refBody := s.get(t, unknownHost, "/", nil)
	for _, hp := range [][2]string{
		{"passwords.example.com", "/admin"},
		{"auth.example.com", "/admin/"},
		{"radarr.example.com", "/"},
		{"radarr", "/"},
	} {
		resp, body := s.get(t, hp[0], hp[1], nil)
		if resp.StatusCode != ref.StatusCode || !bytes.Equal(body, refBody) {
			t.Errorf("%s%s: %d %q, want %d %q", hp[0], hp[1], resp.StatusCode, body, ref.StatusCode, refBody)
		}
		keys := func(h http.Header) []string {
			var ks []string
			for k := range h {
				if k != "Date" {
					ks = append(ks, k+"="+strings.Join(h[k], ","))
				}
			}
			slices.Sort(ks)
			return ks
		}
		if g, w := keys(resp.Header), keys(ref.Header); !slices.Equal(g, w) {
			t.Errorf("%s%s: headers %v, want %v", hp[0], hp[1], g, w)
		}
	}
}
