package proxy

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gatehouse/auth"
	"gatehouse/routes"
)

// TestDecide: every verdict has its answer — the very 404 of an unknown
// host for a route that does not exist for the client, 403 naming who was
// refused, the sign-in's own answer, 503 while sign-in cannot work — and
// only Allow lets the request on.
func TestDecide(t *testing.T) {
	g := stageGateway(t)
	member := &auth.TailnetPeer{Login: "bob@example.com", Name: "Bob", Device: "bob's laptop"}
	admin := &auth.TailnetPeer{Login: "admin@example.com", Name: "Admin", Device: "laptop", Admin: true}
	tagged := &auth.TailnetPeer{Device: "server", Tags: []string{"tag:media"}}
	alice := &auth.FamilyUser{Subject: "s-alice", Email: "alice@example.com"}
	kid := &auth.FamilyUser{Subject: "s-kid", Email: "kid@example.com", Groups: []string{"kids"}}
	cases := []struct {
		name   string
		door   routes.Door
		host   string
		id     auth.Identity
		ready  bool
		signIn *fakeSignIn
		// wanted
		allow  bool
		status int
		body   string // in the page
		begun  bool   // the sign-in's Begin answered
	}{
		{name: "app", door: routes.Cloudflare, host: "app.example.com", allow: true},
		{name: "admin route, admin", door: routes.Tailnet, host: "radarr", id: auth.Identity{Tailnet: admin}, allow: true},
		{name: "admin route, member", door: routes.Tailnet, host: "radarr", id: auth.Identity{Tailnet: member},
			status: http.StatusForbidden, body: "bob@example.com on the device bob&#39;s laptop"},
		{name: "admin route, no tailnet identity", door: routes.Tailnet, host: "radarr", status: http.StatusNotFound},
		{name: "members route, member", door: routes.Tailnet, host: "radicale", id: auth.Identity{Tailnet: member}, allow: true},
		{name: "members route, tagged device", door: routes.Tailnet, host: "radicale", id: auth.Identity{Tailnet: tagged},
			status: http.StatusForbidden, body: "the tagged device server (tag:media)"},
		{name: "family, signed in", door: routes.Cloudflare, host: "photos.example.com", id: auth.Identity{Family: alice}, ready: true,
			signIn: &fakeSignIn{}, allow: true},
		{name: "family, no session", door: routes.Cloudflare, host: "photos.example.com", ready: true,
			signIn: &fakeSignIn{}, status: http.StatusFound, begun: true},
		{name: "family, sign-in unavailable", door: routes.Cloudflare, host: "photos.example.com",
			signIn: &fakeSignIn{}, status: http.StatusServiceUnavailable, body: "Sign-in unavailable"},
		{name: "family, no sign-in set up", door: routes.Cloudflare, host: "photos.example.com",
			status: http.StatusServiceUnavailable, body: "<b>photos</b> needs you to sign in"},
		{name: "family, ready but no sign-in to begin", door: routes.Cloudflare, host: "photos.example.com", ready: true,
			status: http.StatusServiceUnavailable, body: "Sign-in unavailable"},
		{name: "group route, not in the group", door: routes.Cloudflare, host: "kids.example.com", id: auth.Identity{Family: alice}, ready: true,
			signIn: &fakeSignIn{}, status: http.StatusForbidden, body: "alice@example.com"},
		{name: "group route, in the group", door: routes.Cloudflare, host: "kids.example.com", id: auth.Identity{Family: kid}, ready: true,
			signIn: &fakeSignIn{}, allow: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://"+c.host+"/", nil)
			r.Header.Set("Accept", "text/html") // a browser: the pages (API clients get JSON, TestShippedMatrixCloudflare)
			h, v, rec := stageVisit(t, g, c.door, r)
			if v.m.Route == nil {
				t.Fatalf("%s matches no route on the %s door", c.host, c.door)
			}
			v.id = c.id
			if c.signIn != nil {
				v.signIn = c.signIn
			}
			// A renewed session cookie set while identifying.
			rec.Header().Set("Set-Cookie", "__Host-gatehouse=renewed")
			allow := h.decide(v, r, auth.Policy{SignInReady: c.ready})
			if allow != c.allow {
				t.Fatalf("allowed: %v, want %v (answer %d %q)", allow, c.allow, rec.Code, rec.Body)
			}
			if allow {
				if rec.Body.Len() != 0 {
					t.Errorf("allowed, yet answered %q", rec.Body)
				}
				return
			}
			if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.body) {
				t.Errorf("answer %d %q, want %d with %q", rec.Code, rec.Body, c.status, c.body)
			}
			if begun := c.signIn != nil && c.signIn.begun > 0; begun != c.begun {
				t.Errorf("sign-in begun: %v, want %v", begun, c.begun)
			}
			if c.status == http.StatusNotFound {
				// Byte for byte the unknown host's answer: nothing set
				// before, not even a cookie, survives.
				if !bytes.Equal(rec.Body.Bytes(), notFoundPage) || rec.Header().Get("Set-Cookie") != "" {
					t.Errorf("404 differs from the unknown host's: %v %q", rec.Header(), rec.Body)
				}
			}
		})
	}
}
