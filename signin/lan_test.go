package signin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gatehouse/routes"
)

// One sign-in, both public doors: signed in away from home (Cloudflare
// door), the same session cookie lets the browser in at home (LAN door)
// under the same name, and a sign-in begun at home lands back at home.
func TestOneSignInOnBothPublicDoors(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	lan := httptest.NewUnstartedServer(h.gw.Door(routes.LAN))
	lan.StartTLS()
	t.Cleanup(lan.Close)

	away := h.browser()
	resp, body := away.signIn("https://photos.example.com/albums", "alice")
	if resp.StatusCode != http.StatusOK || decodeSeen(t, body).Route != "photos" {
		t.Fatalf("sign-in through the Cloudflare door: %d %s", resp.StatusCode, body)
	}
	before, _ := h.kc.Counts()
	away.useDoor(lan.Listener.Addr().String())
	resp, body = away.get("https://photos.example.com/albums")
	if resp.StatusCode != http.StatusOK || decodeSeen(t, body).Route != "photos" {
		t.Fatalf("the same cookie at home: %d %s", resp.StatusCode, body)
	}
	if after, _ := h.kc.Counts(); after != before {
		t.Errorf("the LAN door sent the browser to the provider again (%d → %d authorizations)", before, after)
	}
	if seen := decodeSeen(t, body); !strings.Contains(seen.Header.Get("X-Forwarded-For"), "127.0.0.1") {
		t.Errorf("X-Forwarded-For at home = %q, want the socket's address", seen.Header.Get("X-Forwarded-For"))
	}

	// Starting at home: the callback comes back to the LAN door (the same
	// redirect URI), and the cookie then works away from home too.
	home := h.browser()
	home.useDoor(lan.Listener.Addr().String())
	resp, body = home.signIn("https://photos.example.com/", "kid")
	if resp.StatusCode != http.StatusOK || decodeSeen(t, body).Route != "photos" {
		t.Fatalf("sign-in through the LAN door: %d %s", resp.StatusCode, body)
	}
	home.useDoor(h.door.Listener.Addr().String())
	if resp, body = home.get("https://photos.example.com/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the home cookie away from home: %d %s", resp.StatusCode, body)
	}
}
