package proxy_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"gatehouse/proxy"
	"gatehouse/routes"
)

// forbidden are the identity and path-override headers a client must never
// get through to a backend, in the normalised spelling backends compare:
// lower case, '_' and '.' read as '-'.
var forbidden = []string{
	"tailscale-user-login", "tailscale-user-name", "tailscale-user-profile-pic",
	"x-forwarded-user", "x-forwarded-email", "x-forwarded-groups", "x-forwarded-preferred-username",
	"remote-user", "remote-email", "remote-groups", "remote-name",
	"x-auth-request-user", "x-auth-request-email", "x-webauth-user",
	"x-original-url", "x-original-uri", "x-rewrite-url",
	"cf-connecting-ip", "true-client-ip", "forwarded", "x-client-ip",
}

func normName(k string) string {
	k = strings.ToLower(k)
	return strings.NewReplacer("_", "-", ".", "-").Replace(k)
}

const attacker = "evil@attacker.test"

// checkScrubbed fails if the backend saw any forbidden header or any value
// the attacker sent.
func checkScrubbed(t *testing.T, what string, h http.Header) {
	t.Helper()
	for k, vs := range h {
		if slices.Contains(forbidden, normName(k)) {
			t.Errorf("%s: backend got %s: %q", what, k, vs)
		}
		for _, v := range vs {
			if strings.Contains(v, "attacker") || strings.Contains(v, "/admin") {
				t.Errorf("%s: backend got the client's value in %s: %q", what, k, v)
			}
		}
	}
}

// TestIdentityHeadersStripped sends identity headers in every spelling and
// checks that none reaches the backend.
func TestIdentityHeadersStripped(t *testing.T) {
	be := newEchoBackend(t, "app")
	d := startDoor(t, parseConfig(t, appConfig(be.url, "")))

	// Through Go's client, which sends map keys exactly as written.
	hdr := http.Header{}
	for _, k := range []string{
		"Tailscale-User-Login", "Tailscale_User_Login", "Tailscale.User.Login", "TAILSCALE-USER-NAME",
		"X-Forwarded-User", "X_Forwarded_Email", "X-Forwarded-Groups",
		"Remote-User", "Remote_User", "X-Auth-Request-User", "X-Webauth-User",
		"X-Original-URL", "X-Rewrite-Url",
	} {
		hdr[k] = []string{attacker}
	}
	hdr["X-Original-URL"] = []string{"/admin"}
	resp, body := d.get(t, "app.example.com", "/", hdr)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %q", resp.StatusCode, body)
	}
	checkScrubbed(t, "client headers", decodeSeen(t, body).Header)

	// Byte for byte, so that the exact spelling reaches the server.
	raw := "GET / HTTP/1.1\r\n" +
		"Host: app.example.com\r\n" +
		"tailscale-user-login: " + attacker + "\r\n" +
		"Tailscale_User_Login: " + attacker + "\r\n" +
		"Tailscale.User.Login: " + attacker + "\r\n" +
		"tAILSCALE-uSER-nAME: " + attacker + "\r\n" +
		"X-Forwarded-User: " + attacker + "\r\n" +
		"X_Forwarded_Email: " + attacker + "\r\n" +
		"x.forwarded.groups: " + attacker + "\r\n" +
		"Remote-User: " + attacker + "\r\n" +
		"Remote_User: " + attacker + "\r\n" +
		"REMOTE.EMAIL: " + attacker + "\r\n" +
		"X-Auth-Request-User: " + attacker + "\r\n" +
		"x_auth_request_email: " + attacker + "\r\n" +
		"X-Webauth-User: " + attacker + "\r\n" +
		"X-Original-URL: /admin\r\n" +
		"x_original_uri: /admin\r\n" +
		"X-Keep: kept\r\n" +
		"Connection: close\r\n\r\n"
	resp, body = parseRaw(t, d.raw(t, raw))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("raw: status %d: %q", resp.StatusCode, body)
	}
	got := decodeSeen(t, body)
	checkScrubbed(t, "raw headers", got.Header)
	if got.Header.Get("X-Keep") != "kept" {
		t.Errorf("an ordinary header was lost: %v", got.Header)
	}
}

// TestForwardedFromUntrustedPeer: 127.0.0.1 is not in trusted_proxies, so
// whatever it claims about the client is ignored.
func TestForwardedFromUntrustedPeer(t *testing.T) {
	be := newEchoBackend(t, "app")
	d := startDoor(t, parseConfig(t, appConfig(be.url, `
cloudflare {
  trusted_proxies = ["192.0.2.1/32"]
}`)))
	for _, hdr := range []http.Header{
		{"Cf-Connecting-Ip": {"203.0.113.9"}},
		{"X-Forwarded-For": {"203.0.113.9"}},
		{"X-Forwarded-For": {"203.0.113.9, 192.0.2.1"}},
		{"X-Real-Ip": {"203.0.113.9"}, "True-Client-Ip": {"203.0.113.9"}, "Forwarded": {"for=203.0.113.9"}},
		{"Cf-Connecting-Ip": {"203.0.113.9"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"evil.test"}},
	} {
		resp, body := d.get(t, "app.example.com", "/", hdr)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%v: status %d: %q", hdr, resp.StatusCode, body)
		}
		h := decodeSeen(t, body).Header
		if g := h["X-Forwarded-For"]; !slices.Equal(g, []string{"127.0.0.1"}) {
			t.Errorf("%v: X-Forwarded-For %q, want [127.0.0.1]", hdr, g)
		}
		if g := h["X-Real-Ip"]; !slices.Equal(g, []string{"127.0.0.1"}) {
			t.Errorf("%v: X-Real-Ip %q, want [127.0.0.1]", hdr, g)
		}
		if g := h["X-Forwarded-Proto"]; !slices.Equal(g, []string{"https"}) {
			t.Errorf("%v: X-Forwarded-Proto %q, want [https]", hdr, g)
		}
		if g := h["X-Forwarded-Host"]; !slices.Equal(g, []string{"app.example.com"}) {
			t.Errorf("%v: X-Forwarded-Host %q, want [app.example.com]", hdr, g)
		}
		for _, k := range []string{"Cf-Connecting-Ip", "True-Client-Ip", "Forwarded"} {
			if v, ok := h[k]; ok {
				t.Errorf("%v: backend got %s: %q", hdr, k, v)
			}
		}
	}
}

// TestForwardedFromTrustedPeer: the default trusted_proxies include
// 127.0.0.0/8, so a loopback peer is cloudflared and is believed.
func TestForwardedFromTrustedPeer(t *testing.T) {
	be := newEchoBackend(t, "app")
	d := startDoor(t, parseConfig(t, appConfig(be.url, "")))
	for _, c := range []struct {
		hdr   http.Header
		want  string
		proto string
	}{
		{http.Header{"Cf-Connecting-Ip": {"203.0.113.9"}}, "203.0.113.9", "https"},
		{http.Header{"Cf-Connecting-Ip": {" 2001:db8::9 "}}, "2001:db8::9", "https"},
		// CF-Connecting-IP wins over X-Forwarded-For.
		{http.Header{"Cf-Connecting-Ip": {"203.0.113.9"}, "X-Forwarded-For": {"198.51.100.7"}}, "203.0.113.9", "https"},
		// Right-most untrusted address of the chain.
		{http.Header{"X-Forwarded-For": {"198.51.100.7, 203.0.113.9, 127.0.0.5"}}, "203.0.113.9", "https"},
		{http.Header{"X-Forwarded-For": {"198.51.100.7", "203.0.113.9, 127.0.0.2"}}, "203.0.113.9", "https"},
		{http.Header{"X-Forwarded-For": {"198.51.100.7,203.0.113.9"}}, "203.0.113.9", "https"},
		// A chain broken by garbage is believed no further than the garbage.
		{http.Header{"X-Forwarded-For": {"198.51.100.7, not-an-ip"}}, "127.0.0.1", "https"},
		{http.Header{"Cf-Connecting-Ip": {"not-an-ip"}}, "127.0.0.1", "https"},
		// cloudflared says how the visitor came in.
		{http.Header{"Cf-Connecting-Ip": {"203.0.113.9"}, "X-Forwarded-Proto": {"http"}}, "203.0.113.9", "http"},
		{http.Header{"X-Forwarded-Proto": {"gopher"}}, "127.0.0.1", "https"},
	} {
		resp, body := d.get(t, "app.example.com", "/", c.hdr)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%v: status %d: %q", c.hdr, resp.StatusCode, body)
		}
		h := decodeSeen(t, body).Header
		if g := h["X-Forwarded-For"]; !slices.Equal(g, []string{c.want}) {
			t.Errorf("%v: X-Forwarded-For %q, want [%s]", c.hdr, g, c.want)
		}
		if g := h["X-Real-Ip"]; !slices.Equal(g, []string{c.want}) {
			t.Errorf("%v: X-Real-Ip %q, want [%s]", c.hdr, g, c.want)
		}
		if g := h["X-Forwarded-Proto"]; !slices.Equal(g, []string{c.proto}) {
			t.Errorf("%v: X-Forwarded-Proto %q, want [%s]", c.hdr, g, c.proto)
		}
		if v, ok := h["Cf-Connecting-Ip"]; ok {
			t.Errorf("%v: Cf-Connecting-Ip reached the backend: %q", c.hdr, v)
		}
	}
}

// TestTailnetDoorWithoutWhoIsFailsClosed: a request that reaches the
// tailnet handler with no tailnet identity attached to its connection is
// refused, whatever identity headers it brings, and never forwarded.
func TestTailnetDoorWithoutWhoIsFailsClosed(t *testing.T) {
	be := newEchoBackend(t, "radicale")
	cfg := parseConfig(t, `
domain = "example.com"
tailnet {
  admins = ["admin@example.com"]
}
route "radicale" {
  backend = "`+be.url+`"
  tailnet {
    access           = "members"
    identity_headers = ["Tailscale-User-Login", "Remote-User"]
  }
}
`)
	gw := proxy.New(routes.Compile(cfg), proxy.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(gw.Close)
	for _, h := range []http.Handler{gw.Door(routes.Tailnet), gw.TailnetHandler("gatehouse", false), gw.TailnetHandler("radicale", true)} {
		srv := httptest.NewServer(h)
		req, _ := http.NewRequest("GET", srv.URL+"/", nil)
		req.Host = "radicale"
		req.Header.Set("Tailscale-User-Login", "admin@example.com")
		req.Header.Set("Remote-User", "admin@example.com")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "could not tell which tailnet device") {
			t.Errorf("status %d %q, want 403: no identity, no entry", resp.StatusCode, body)
		}
	}
	if n := be.hits.Load(); n != 0 {
		t.Errorf("the backend got %d requests without a tailnet identity", n)
	}
}

// TestIdentityTrailersNotForwarded: identity fields sent as request
// trailers, after the body, reach the backend neither as headers nor as
// trailers.
func TestIdentityTrailersNotForwarded(t *testing.T) {
	be := newEchoBackend(t, "app")
	d := startDoor(t, parseConfig(t, appConfig(be.url, "")))
	raw := "POST / HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked\r\n" +
		"Trailer: Tailscale-User-Login, Remote_User, X-Forwarded-User\r\nConnection: close\r\n\r\n" +
		"3\r\nabc\r\n0\r\n" +
		"Tailscale-User-Login: " + attacker + "\r\nRemote_User: " + attacker + "\r\nX-Forwarded-User: " + attacker + "\r\n\r\n"
	resp, body := parseRaw(t, d.raw(t, raw))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %q", resp.StatusCode, body)
	}
	got := decodeSeen(t, body)
	if got.BodyLen != 3 {
		t.Errorf("backend got %d body bytes, want 3", got.BodyLen)
	}
	checkScrubbed(t, "headers of a request with trailers", got.Header)
	for k, vs := range got.Trailer {
		for _, v := range vs {
			if strings.Contains(v, "attacker") {
				t.Errorf("backend got the trailer %s: %q", k, v)
			}
		}
	}
}
