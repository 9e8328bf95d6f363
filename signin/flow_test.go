package signin

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/proxy"
)

var _ proxy.SignIn = (*SignIn)(nil)

// The whole code flow through the Cloudflare door: a browser opens a deep
// link, is sent to the provider, signs in there, comes back through the
// callback to the URL it asked for, and the backend answers. The backend
// never sees the gateway's cookie or any identity header the client sent.
// A second family host needs no new sign-in (cookie_domain).
func TestCodeFlowThroughDoor(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	b := h.browser()
	b.header.Set("X-Forwarded-User", "admin")
	b.header.Set("Remote-User", "admin")

	// An app cookie of the backend's own, which must pass through.
	u, _ := url.Parse("https://photos.example.com/")
	b.jar.SetCookies(u, []*http.Cookie{{Name: "immich_session", Value: "app-owned"}})

	resp, body := b.signIn("https://photos.example.com/albums/42?sort=date&q=a%20b", "alice")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after sign-in: %d %s", resp.StatusCode, body)
	}
	if got := resp.Request.URL.String(); got != "https://photos.example.com/albums/42?sort=date&q=a%20b" {
		t.Errorf("landed on %s, want the URL first asked for", got)
	}
	seen := decodeSeen(t, body)
	if seen.Path != "/albums/42" || seen.Query != "sort=date&q=a%20b" {
		t.Errorf("backend got path %q query %q", seen.Path, seen.Query)
	}
	checkBackendHeaders(t, seen)
	if c := seen.Header.Get("Cookie"); c != "immich_session=app-owned" {
		t.Errorf("backend Cookie header = %q, want only the app's own cookie", c)
	}

	// The provider saw the code flow with PKCE S256 and a nonce.
	h.kc.Mu.Lock()
	authz := h.kc.LastAuthorize
	h.kc.Mu.Unlock()
	if authz.Get("code_challenge_method") != "S256" || authz.Get("code_challenge") == "" ||
		authz.Get("nonce") == "" || authz.Get("state") == "" || authz.Get("response_type") != "code" ||
		authz.Get("redirect_uri") != "https://photos.example.com/.gatehouse/callback" {
		t.Errorf("authorization request: %v", authz)
	}

	// Another family host: no second trip to the provider.
	before, _ := h.kc.Counts()
	resp, body = b.get("https://files.example.com/docs")
	if resp.StatusCode != http.StatusOK || decodeSeen(t, body).Route != "files" {
		t.Fatalf("second host: %d %s", resp.StatusCode, body)
	}
	if after, _ := h.kc.Counts(); after != before {
		t.Errorf("second family host went to the provider again (%d → %d authorize calls)", before, after)
	}
	checkBackendHeaders(t, decodeSeen(t, body))

	// An app route on the same cookie domain: the cookie is stripped there
	// too.
	resp, body = b.get("https://passwords.example.com/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("app route: %d %s", resp.StatusCode, body)
	}
	if c := decodeSeen(t, body).Header.Get("Cookie"); strings.Contains(c, "gatehouse") {
		t.Errorf("app route backend saw the gateway cookie: %q", c)
	}
}

func checkBackendHeaders(t *testing.T, s backendSeen) {
	t.Helper()
	if c := s.Header.Get("Cookie"); strings.Contains(c, "gatehouse") {
		t.Errorf("backend saw the gateway cookie: %q", c)
	}
	for _, k := range []string{"X-Forwarded-User", "Remote-User", "X-Remote-User"} {
		if v := s.Header.Get(k); v != "" {
			t.Errorf("backend got client-sent %s: %q", k, v)
		}
	}
}

// signedIn reports whether b reaches a family backend without signing in.
func (b *browser) signedIn() bool {
	b.t.Helper()
	b.noRedirects(true)
	defer b.noRedirects(false)
	resp, body := b.get("https://photos.example.com/whoami")
	switch {
	case resp.StatusCode == http.StatusOK:
		decodeSeen(b.t, body)
		return true
	case resp.StatusCode == http.StatusFound && strings.Contains(resp.Header.Get("Location"), "/protocol/openid-connect/auth"):
		return false
	}
	b.t.Fatalf("whoami: %d %s", resp.StatusCode, body)
	return false
}

// startFlow opens a family URL without following the redirect and
// returns the provider's authorization URL.
func (b *browser) startFlow(u string) *url.URL {
	b.t.Helper()
	b.noRedirects(true)
	defer b.noRedirects(false)
	resp, body := b.get(u)
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		b.t.Fatal(err)
	}
	return loc
}

func sessionCookieSet(resp *http.Response) bool {
	for _, c := range resp.Cookies() {
		if c.Name == "__Secure-gatehouse" && c.MaxAge > 0 {
			return true
		}
	}
	return false
}

func TestOpenRedirectsRefusedAtLogin(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	b := h.browser()
	b.noRedirects(true)
	for _, rd := range openRedirects {
		resp, _ := b.get("https://photos.example.com/.gatehouse/login?rd=" + url.QueryEscape(rd))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("rd=%q: %d Location %q, want 400 and no redirect", rd, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// A good one goes to the provider.
	resp, _ := b.get("https://photos.example.com/.gatehouse/login?rd=" + url.QueryEscape("https://files.example.com/x"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), h.kc.Issuer+"/protocol/openid-connect/auth?") {
		t.Fatalf("good rd: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	b.noRedirects(false)

	// The whole flow with a good rd lands there; with a path that looks
	// like another host, it lands on the same host.
	resp, _ = b.get("https://photos.example.com/.gatehouse/login?rd=" + url.QueryEscape("https://files.example.com/x?y=1"))
	resp, body := b.submitLogin(resp, "alice")
	if resp.StatusCode != 200 || resp.Request.URL.String() != "https://files.example.com/x?y=1" {
		t.Fatalf("rd flow landed on %s (%d %s)", resp.Request.URL, resp.StatusCode, body)
	}
	b2 := h.browser()
	resp, body = b2.signIn("https://photos.example.com//evil.com/x", "alice")
	if resp.Request.URL.Host != "photos.example.com" {
		t.Fatalf("//evil.com path landed on %s (%d %s)", resp.Request.URL, resp.StatusCode, body)
	}
	// The sign-in endpoints exist only on family hosts.
	resp, _ = b2.get("https://passwords.example.com/.gatehouse/login?rd=/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.Host, "passwords") {
		t.Errorf("login on an app host: %d at %s, want the app's own answer", resp.StatusCode, resp.Request.URL)
	}
}

func TestStateNoncePKCETampering(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})

	t.Run("state mismatch", func(t *testing.T) {
		b := h.browser()
		authz := b.startFlow("https://photos.example.com/")
		state := authz.Query().Get("state")
		for _, bad := range []string{state[:16] + "tampered-tail-of-the-state", "nope", ""} {
			resp, body := b.get("https://photos.example.com/.gatehouse/callback?code=x&state=" + url.QueryEscape(bad))
			if resp.StatusCode != http.StatusBadRequest || sessionCookieSet(resp) {
				t.Errorf("state %q: %d %s", bad, resp.StatusCode, body)
			}
		}
	})

	t.Run("callback in another browser (login CSRF)", func(t *testing.T) {
		attacker, victim := h.browser(), h.browser()
		authz := attacker.startFlow("https://photos.example.com/")
		loginResp, _ := attacker.get(authz.String())
		attacker.noRedirects(true)
		resp, _ := attacker.submitLogin(loginResp, "kid")
		for resp.StatusCode == http.StatusFound && !strings.Contains(resp.Header.Get("Location"), "/.gatehouse/callback") {
			resp, _ = attacker.get(resp.Header.Get("Location"))
		}
		attacker.noRedirects(false)
		cb := resp.Header.Get("Location")
		if !strings.Contains(cb, "/.gatehouse/callback") {
			t.Fatalf("no callback redirect: %d %q", resp.StatusCode, cb)
		}
		resp, body := victim.get(cb)
		if resp.StatusCode != http.StatusBadRequest || sessionCookieSet(resp) || victim.signedIn() {
			t.Errorf("victim completed the attacker's sign-in: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("nonce changed in the authorization request", func(t *testing.T) {
		b := h.browser()
		authz := b.startFlow("https://photos.example.com/")
		q := authz.Query()
		q.Set("nonce", "attacker-chosen-nonce")
		authz.RawQuery = q.Encode()
		loginResp, _ := b.get(authz.String())
		resp, body := b.submitLogin(loginResp, "alice")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "could not be verified") || b.signedIn() {
			t.Errorf("nonce mismatch: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("PKCE challenge changed", func(t *testing.T) {
		b := h.browser()
		authz := b.startFlow("https://photos.example.com/")
		q := authz.Query()
		q.Set("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM") // S256 of another verifier
		authz.RawQuery = q.Encode()
		loginResp, _ := b.get(authz.String())
		resp, body := b.submitLogin(loginResp, "alice")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "code was refused") || b.signedIn() {
			t.Errorf("PKCE mismatch: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("code replayed", func(t *testing.T) {
		b := h.browser()
		authz := b.startFlow("https://photos.example.com/")
		flowName := flowCookieName(authz.Query().Get("state"))
		flowCookie := b.cookie(flowName)
		if flowCookie == nil {
			t.Fatalf("no flow cookie %s", flowName)
		}
		loginResp, _ := b.get(authz.String())
		b.noRedirects(true)
		resp, _ := b.submitLogin(loginResp, "alice")
		for resp.StatusCode == http.StatusFound && !strings.Contains(resp.Header.Get("Location"), "/.gatehouse/callback") {
			resp, _ = b.get(resp.Header.Get("Location"))
		}
		cb := resp.Header.Get("Location")
		b.noRedirects(false)
		if resp, body := b.get(cb); resp.StatusCode != 200 {
			t.Fatalf("first use of the code: %d %s", resp.StatusCode, body)
		}
		// The same callback again, with the flow cookie it needed.
		replay := h.browser()
		u, _ := url.Parse("https://photos.example.com/")
		replay.jar.SetCookies(u, []*http.Cookie{flowCookie})
		resp, body := replay.get(cb)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "code was refused") || replay.signedIn() {
			t.Errorf("replayed code: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("tampered, foreign and expired session cookies", func(t *testing.T) {
		b := h.browser()
		b.signIn("https://photos.example.com/", "alice")
		good := b.cookie("__Secure-gatehouse")
		if good == nil || !b.signedIn() {
			t.Fatal("not signed in")
		}
		u, _ := url.Parse("https://photos.example.com/")
		flip := []byte(good.Value)
		flip[len(flip)/2] ^= 1
		for name, val := range map[string]string{
			"tampered":  string(flip),
			"truncated": good.Value[:len(good.Value)-4],
			"garbage":   "not-a-session",
		} {
			other := h.browser()
			other.jar.SetCookies(u, []*http.Cookie{{Name: "__Secure-gatehouse", Value: val, Domain: "example.com", Path: "/"}})
			if other.signedIn() {
				t.Errorf("%s cookie accepted", name)
			}
		}
		// Sealed with a key the gateway does not have.
		foreign, err := parseKeys([]byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"))
		if err != nil {
			t.Fatal(err)
		}
		pt, _ := marshalSession(&session{V: sessionVersion, ID: "x", Sub: "id-alice", Groups: []string{"/parents"},
			Created: h.clock.Now().UnixNano(), Checked: h.clock.Now().UnixNano(), Expires: h.clock.Now().Add(time.Hour).UnixNano()})
		val, _ := foreign.seal(purposeSession, pt, h.si.sessionAD())
		other := h.browser()
		other.jar.SetCookies(u, []*http.Cookie{{Name: "__Secure-gatehouse", Value: val, Domain: "example.com", Path: "/"}})
		if other.signedIn() {
			t.Error("cookie sealed with a foreign key accepted")
		}
		// Past the session lifetime.
		h.clock.Advance(721 * time.Hour)
		defer h.clock.Advance(-721 * time.Hour)
		if b.signedIn() {
			t.Error("expired session accepted")
		}
	})
}
