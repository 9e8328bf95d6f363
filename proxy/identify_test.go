package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gatehouse/auth"
	"gatehouse/routes"
)

// TestIdentify: identity comes from the door only — WhoIs on the tailnet,
// a device token or a session on a family route — and a door that cannot
// tell refuses instead of going on anonymously.
func TestIdentify(t *testing.T) {
	g := stageGateway(t)
	alice := &auth.FamilyUser{Subject: "s-alice", Email: "alice@example.com"}
	tv := &auth.FamilyUser{Subject: "s-alice", Email: "alice@example.com", Device: "TV"}
	cases := []struct {
		name        string
		door        routes.Door
		host        string
		whois       auth.PeerLookup // nil: no lookup on the connection
		signIn      SignIn
		deviceToken string
		// wanted
		ok         bool
		status     int    // of the answer when !ok
		body       string // in the answer
		login      string // tailnet login
		admin      bool
		family     *auth.FamilyUser
		ready      bool
		setsCookie bool
	}{
		{name: "app route: nobody in particular", door: routes.Cloudflare, host: "app.example.com", ok: true},
		{name: "tailnet without a lookup", door: routes.Tailnet, host: "radarr", ok: false,
			status: http.StatusForbidden, body: "could not tell which tailnet device"},
		{name: "tailnet lookup fails", door: routes.Tailnet, host: "radarr", whois: fakeWhoIs{err: errWhoIsDown}, ok: false,
			status: http.StatusForbidden, body: "could not tell which tailnet device"},
		{name: "tailnet admin", door: routes.Tailnet, host: "radarr", whois: fakeWhoIs{res: peer("admin@example.com")}, ok: true,
			login: "admin@example.com", admin: true},
		{name: "tailnet member", door: routes.Tailnet, host: "radicale", whois: fakeWhoIs{res: peer("bob@example.com")}, ok: true,
			login: "bob@example.com"},
		{name: "tagged admin device", door: routes.Tailnet, host: "radarr", whois: fakeWhoIs{res: peer("admin@example.com", "tag:ops")}, ok: true,
			admin: true},
		{name: "family route without sign-in", door: routes.Cloudflare, host: "photos.example.com", ok: true},
		{name: "family session", door: routes.Cloudflare, host: "photos.example.com",
			signIn: &fakeSignIn{ready: true, user: alice, cookie: "__Host-gatehouse=renewed"}, ok: true,
			family: alice, ready: true, setsCookie: true},
		// The session is asked while the provider is down: one within its
		// outage grace stands and makes sign-in available for it.
		{name: "family, provider down, session within its grace", door: routes.Cloudflare, host: "photos.example.com",
			signIn: &fakeSignIn{ready: false, user: alice}, ok: true, family: alice, ready: true},
		{name: "family, provider down, no session", door: routes.Cloudflare, host: "photos.example.com",
			signIn: &fakeSignIn{ready: false}, ok: true},
		{name: "session only on family routes", door: routes.Cloudflare, host: "app.example.com",
			signIn: &fakeSignIn{ready: true, user: alice}, ok: true},
		{name: "device token, provider down", door: routes.Cloudflare, host: "photos.example.com",
			signIn: &fakeDevices{fakeSignIn: fakeSignIn{ready: false}, deviceUser: tv}, deviceToken: "good", ok: true,
			family: tv, ready: true},
		{name: "device token refused", door: routes.Cloudflare, host: "photos.example.com",
			signIn: &fakeDevices{fakeSignIn: fakeSignIn{ready: true, user: alice}, deviceUser: tv}, deviceToken: "revoked", ok: false,
			status: http.StatusUnauthorized},
		{name: "no device token: the session", door: routes.Cloudflare, host: "photos.example.com",
			signIn: &fakeDevices{fakeSignIn: fakeSignIn{ready: true, user: alice}, deviceUser: tv}, ok: true,
			family: alice, ready: true},
		{name: "a sign-in without device tokens ignores one", door: routes.Cloudflare, host: "photos.example.com",
			signIn: &fakeSignIn{ready: true, user: alice}, deviceToken: "good", ok: true,
			family: alice, ready: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://"+c.host+"/", nil)
			if c.whois != nil {
				r = overTailnet(r, c.whois)
			}
			h, v, rec := stageVisit(t, g, c.door, r)
			if v.m.Route == nil {
				t.Fatalf("%s matches no route on the %s door", c.host, c.door)
			}
			v.signIn, v.deviceToken = c.signIn, c.deviceToken
			policy, ok := h.identify(v, r)
			if ok != c.ok {
				t.Fatalf("ok = %v, want %v (answer %d %q)", ok, c.ok, rec.Code, rec.Body)
			}
			if !ok {
				if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.body) {
					t.Errorf("answer %d %q, want %d with %q", rec.Code, rec.Body, c.status, c.body)
				}
				return
			}
			if rec.Body.Len() != 0 || rec.Code != http.StatusOK {
				t.Errorf("answered %d %q while identifying", rec.Code, rec.Body)
			}
			switch p := v.id.Tailnet; {
			case c.door != routes.Tailnet && p != nil:
				t.Errorf("tailnet identity %+v off the tailnet", p)
			case c.door == routes.Tailnet && (p == nil || p.Login != c.login || p.Admin != c.admin):
				t.Errorf("tailnet identity %+v, want login %q admin %v", p, c.login, c.admin)
			}
			if v.id.Family != c.family {
				t.Errorf("family identity %+v, want %+v", v.id.Family, c.family)
			}
			if policy.SignInReady != c.ready {
				t.Errorf("SignInReady = %v, want %v", policy.SignInReady, c.ready)
			}
			if got := rec.Header().Get("Set-Cookie") != ""; got != c.setsCookie {
				t.Errorf("Set-Cookie on the answer: %v, want %v", got, c.setsCookie)
			}
		})
	}
}

// TestIdentifyDeviceTokenClient: the device token is weighed with the
// client address the door believes, so its rate limit is the client's.
func TestIdentifyDeviceTokenClient(t *testing.T) {
	g := stageGateway(t)
	r := httptest.NewRequest("GET", "http://photos.example.com/", nil)
	r.RemoteAddr = "127.0.0.1:4000" // a trusted proxy, vouching for the client
	r.Header.Set("Cf-Connecting-Ip", "203.0.113.7")
	r.Header.Set("X-Gatehouse-Token", "good")
	h, v, _ := stageVisit(t, g, routes.Cloudflare, r)
	dev := &fakeDevices{deviceUser: &auth.FamilyUser{Subject: "s"}}
	v.signIn = dev
	v.fwd, v.deviceToken = h.scrub(r, v.st.table.Config)
	if _, ok := h.identify(v, r); !ok {
		t.Fatal("device token refused")
	}
	if got := dev.client.String(); got != "203.0.113.7" {
		t.Errorf("Device got client %s, want 203.0.113.7", got)
	}
}
