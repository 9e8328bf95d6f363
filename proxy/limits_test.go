package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gatehouse/auth"
	"gatehouse/routes"
)

// admitOnce runs the limit stage for one request to path, ending the visit
// with status when admitted, and returns the answer of a refusal (0 when
// admitted).
func admitOnce(t *testing.T, g *Gateway, path string, id auth.Identity, status int) (int, string) {
	t.Helper()
	r := httptest.NewRequest("GET", "http://app.example.com"+path, nil)
	r.RemoteAddr = "192.0.2.1:5000"
	h, v, rec := stageVisit(t, g, routes.Cloudflare, r)
	v.fwd, _ = h.scrub(r, v.st.table.Config)
	v.id = id
	if !h.admit(v) {
		h.release(v)
		return rec.Code, rec.Body.String() + " Retry-After=" + rec.Header().Get("Retry-After")
	}
	v.lw.WriteHeader(status)
	h.release(v)
	return 0, ""
}

// TestAdmit: the route's limit, a path rule's own limit and a path
// without one that falls under its parent's, keyed on who is asking; a ban
// counts the failures of released answers.
func TestAdmit(t *testing.T) {
	t.Run("route limit", func(t *testing.T) {
		g := stageGateway(t)
		for i := range 2 { // burst 2
			if code, body := admitOnce(t, g, "/", auth.Identity{}, 200); code != 0 {
				t.Fatalf("request %d refused: %d %s", i, code, body)
			}
		}
		code, body := admitOnce(t, g, "/", auth.Identity{}, 200)
		if code != http.StatusTooManyRequests || !strings.Contains(body, "Slow down") || strings.HasSuffix(body, "Retry-After=") {
			t.Errorf("third request: %d %q, want 429 with Retry-After", code, body)
		}
		// Another person behind the same address has a bucket of their own.
		alice := auth.Identity{Family: &auth.FamilyUser{Subject: "s-alice"}}
		if code, body := admitOnce(t, g, "/", alice, 200); code != 0 {
			t.Errorf("a signed-in user shares the address's bucket: %d %s", code, body)
		}
	})
	t.Run("path limit and its child", func(t *testing.T) {
		g := stageGateway(t)
		// /login has a limit of its own; /login/sub, without one, falls
		// under it rather than under none.
		if code, _ := admitOnce(t, g, "/login/sub", auth.Identity{}, 200); code != 0 {
			t.Fatalf("refused: %d", code)
		}
		rl := g.state.Load().limits[g.Table().Routes()[0]]
		m := g.Table().Match(routes.Cloudflare, "app.example.com", "/login/sub")
		if rl.paths[m.Rule] == nil || rl.paths[m.Rule] != rl.paths[g.Table().Match(routes.Cloudflare, "app.example.com", "/login").Rule] {
			t.Errorf("/login/sub is not under /login's limiter")
		}
	})
	t.Run("ban", func(t *testing.T) {
		g := stageGateway(t)
		for range 2 { // failures = 2, statuses = [401]
			if code, body := admitOnce(t, g, "/login", auth.Identity{}, http.StatusUnauthorized); code != 0 {
				t.Fatalf("refused before the ban: %d %s", code, body)
			}
		}
		code, body := admitOnce(t, g, "/other", auth.Identity{}, 200)
		if code != http.StatusTooManyRequests || !strings.Contains(body, "too many failed sign-in attempts") {
			t.Errorf("after two failures: %d %q, want the ban's 429 on every path of the route", code, body)
		}
	})
}

// Rate limits count per tailnet device: one user's two devices are two
// clients, whatever the user's display name; a tagged device is its own.
func TestLimitIdentityPerTailnetDevice(t *testing.T) {
	laptop := limitIdentity(auth.Identity{Tailnet: &auth.TailnetPeer{Login: "alice@example.com", Name: "Alice", Device: "laptop"}})
	phone := limitIdentity(auth.Identity{Tailnet: &auth.TailnetPeer{Login: "alice@example.com", Name: "Alice", Device: "phone"}})
	if laptop == phone || laptop != "tailnet:alice@example.com/laptop" {
		t.Errorf("alice's laptop %q and phone %q", laptop, phone)
	}
	if got := limitIdentity(auth.Identity{Tailnet: &auth.TailnetPeer{Device: "nas", Tags: []string{"tag:server"}}}); got != "tailnet:nas" {
		t.Errorf("tagged device: %q", got)
	}
}
