package proxy

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"gatehouse/auth"
	"gatehouse/routes"
)

// TestSetOutboundHeaders: the backend gets the client and scheme the door
// believes, the public host, and the identity headers the route asks for
// with the verified identity's values.
func TestSetOutboundHeaders(t *testing.T) {
	tailnetHeaders := &routes.DoorRule{IdentityHeaders: []string{"Tailscale-User-Login", "Tailscale-User-Name", "Remote-Name", "Remote-User"}}
	familyHeaders := &routes.DoorRule{IdentityHeaders: []string{"X-Forwarded-Email", "Remote-User", "X-Forwarded-Groups"}}
	client := netip.MustParseAddr("203.0.113.7")
	cases := []struct {
		name string
		fwd  forwarded
		id   auth.Identity
		dr   *routes.DoorRule
		want http.Header
	}{
		{name: "client over https", fwd: forwarded{client: client, proto: "https"}, dr: &routes.DoorRule{},
			want: http.Header{"X-Forwarded-For": {"203.0.113.7"}, "X-Real-Ip": {"203.0.113.7"},
				"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"app.example.com"}}},
		{name: "no client address", fwd: forwarded{proto: "http"}, dr: &routes.DoorRule{},
			want: http.Header{"X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"app.example.com"}}},
		{name: "tailnet login", fwd: forwarded{proto: "http"}, dr: tailnetHeaders,
			id: auth.Identity{Tailnet: &auth.TailnetPeer{Login: "alice@example.com", Name: "Alice"}},
			want: http.Header{"X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"app.example.com"},
				"Tailscale-User-Login": {"alice@example.com"}, "Remote-User": {"alice@example.com"},
				"Tailscale-User-Name": {"Alice"}, "Remote-Name": {"Alice"}}},
		{name: "tagged device: no person to name", fwd: forwarded{proto: "http"}, dr: tailnetHeaders,
			id:   auth.Identity{Tailnet: &auth.TailnetPeer{Device: "server", Tags: []string{"tag:ops"}, Admin: true}},
			want: http.Header{"X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"app.example.com"}}},
		{name: "family member", fwd: forwarded{proto: "https"}, dr: familyHeaders,
			id: auth.Identity{Family: &auth.FamilyUser{Subject: "s", Email: "alice@example.com", Username: "alice", Groups: []string{"family", "kids"}}},
			want: http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"app.example.com"},
				"X-Forwarded-Email": {"alice@example.com"}, "Remote-User": {"alice"}, "X-Forwarded-Groups": {"family,kids"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			setOutboundHeaders(h, "app.example.com", c.fwd, c.id, c.dr)
			if len(h) != len(c.want) {
				t.Errorf("headers %v, want %v", h, c.want)
			}
			for k, want := range c.want {
				if !slices.Equal(h[k], want) {
					t.Errorf("%s = %q, want %q", k, h[k], want)
				}
			}
		})
	}
}

// TestPrepare: the body is held to max_body (an upload declared larger is
// answered 413 before anything is sent), the backend gets the decided
// path, and the request loses gatehouse's own cookies.
func TestPrepare(t *testing.T) {
	g := stageGateway(t)
	t.Run("declared too large", func(t *testing.T) {
		r := httptest.NewRequest("POST", "http://app.example.com/upload", strings.NewReader(strings.Repeat("x", 1001)))
		h, v, rec := stageVisit(t, g, routes.Cloudflare, r)
		if h.prepare(rec, v, r) {
			t.Fatal("went on with an upload over max_body")
		}
		if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "Cloudflare tunnel") {
			t.Errorf("answer %d %q, want 413 naming the tunnel's limit", rec.Code, rec.Body)
		}
	})
	t.Run("too large, undeclared", func(t *testing.T) {
		r := httptest.NewRequest("POST", "http://app.example.com/upload", io.MultiReader(strings.NewReader(strings.Repeat("x", 1001))))
		r.ContentLength = -1
		h, v, rec := stageVisit(t, g, routes.Cloudflare, r)
		if !h.prepare(rec, v, r) {
			t.Fatalf("refused before reading: %d %q", rec.Code, rec.Body)
		}
		_, err := io.ReadAll(r.Body)
		var tooBig *http.MaxBytesError
		if !errors.As(err, &tooBig) || tooBig.Limit != 1000 {
			t.Errorf("reading the body: %v, want the 1000-byte limit", err)
		}
		if _, ok := r.Body.(*stallReader); !ok {
			t.Errorf("the body has no stall deadline: %T", r.Body)
		}
	})
	t.Run("path, headers and cookies", func(t *testing.T) {
		r := httptest.NewRequest("GET", "http://photos.example.com/a/./b//c", nil)
		r.URL.RawPath = "/a/./b//c"
		r.Header.Set("Cookie", "__Host-gatehouse=session")
		h, v, rec := stageVisit(t, g, routes.Cloudflare, r)
		fake := &fakeSignIn{}
		v.signIn = fake
		v.fwd = forwarded{proto: "https"}
		if !h.prepare(rec, v, r) {
			t.Fatalf("refused: %d %q", rec.Code, rec.Body)
		}
		if r.URL.Path != "/a/b/c" || r.URL.RawPath != "" {
			t.Errorf("path %q (raw %q), want the decided /a/b/c", r.URL.Path, r.URL.RawPath)
		}
		if fake.stripped != 1 || r.Header.Get("Cookie") != "" {
			t.Errorf("gatehouse's cookies not stripped: %q", r.Header.Get("Cookie"))
		}
		if r.Header.Get("X-Forwarded-Proto") != "https" || r.Body != http.NoBody {
			t.Errorf("X-Forwarded-Proto %q, body %T", r.Header.Get("X-Forwarded-Proto"), r.Body)
		}
	})
}
