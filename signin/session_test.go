package signin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/routes"
	"gatehouse/signin/oidctest"
)

// findSetCookie returns the raw Set-Cookie line for a cookie name.
func findSetCookie(resp *http.Response, prefix string) string {
	for _, line := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

func TestCookieAttributes(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	b := h.browser()
	b.signIn("https://photos.example.com/", "alice")

	start := b.findResponse(func(r *http.Response) bool {
		return r.Request.URL.Host == "photos.example.com" && r.StatusCode == http.StatusFound
	})
	flow := findSetCookie(start, flowCookiePrefix)
	for _, want := range []string{"Path=/", "Max-Age=600", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(flow, "; "+want) {
			t.Errorf("flow cookie %q lacks %s", flow, want)
		}
	}
	if strings.Contains(flow, "Domain=") {
		t.Errorf("flow cookie %q has a Domain: a __Host- cookie must not", flow)
	}
	if cc := start.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("sign-in redirect Cache-Control = %q", cc)
	}

	cb := b.findResponse(func(r *http.Response) bool { return r.Request.URL.Path == callbackPath })
	sess := findSetCookie(cb, "__Secure-gatehouse=")
	for _, want := range []string{"Path=/", "Domain=example.com", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(sess, "; "+want) {
			t.Errorf("session cookie %q lacks %s", sess, want)
		}
	}
	if c := cb.Cookies(); len(c) == 0 {
		t.Fatal("callback set no cookie")
	}
	for _, c := range cb.Cookies() {
		if c.Name == "__Secure-gatehouse" && (c.MaxAge < int((719*time.Hour).Seconds()) || c.MaxAge > int((720*time.Hour).Seconds())) {
			t.Errorf("session Max-Age = %d, want the session lifetime", c.MaxAge)
		}
		if strings.HasPrefix(c.Name, flowCookiePrefix) && c.MaxAge >= 0 {
			t.Errorf("callback did not delete the flow cookie: %v", c)
		}
	}
	if cb.StatusCode != http.StatusSeeOther {
		t.Errorf("callback status %d, want 303", cb.StatusCode)
	}
	// Encrypted: nothing of the identity or tokens shows.
	v := b.cookie("__Secure-gatehouse").Value
	for _, leak := range []string{"alice", "example.com", "eyJ", "family"} {
		if strings.Contains(v, leak) {
			t.Errorf("session cookie shows %q", leak)
		}
	}
}

// Many groups do not break the session: it is split into chunks under the
// browsers' per-cookie limit, and the backend sees none of them.
func TestManyGroupsStayUnderCookieLimits(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	var groups []string
	for i := 0; i < 90; i++ {
		groups = append(groups, fmt.Sprintf("/family/household-%02d/%s", i, strings.Repeat("x", 40)))
	}
	groups = append(groups, "/parents")
	h.kc.AddUser(&oidctest.User{Username: "grandma", Email: "grandma@example.com", EmailVerified: true, Groups: groups})
	b := h.browser()
	resp, body := b.signIn("https://request.example.com/", "grandma")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	checkBackendHeaders(t, decodeSeen(t, body))
	cb := b.findResponse(func(r *http.Response) bool { return r.Request.URL.Path == callbackPath })
	chunks := 0
	for _, line := range cb.Header.Values("Set-Cookie") {
		if strings.HasPrefix(line, "__Secure-gatehouse") {
			chunks++
			if len(line) > 4000 {
				t.Errorf("Set-Cookie of %d bytes", len(line))
			}
		}
	}
	if chunks < 2 {
		t.Errorf("%d session chunks; expected the session to be split", chunks)
	}

	// Far more than fits: the session keeps the groups routes ask for.
	var hoard []string
	for i := 0; i < 120; i++ {
		hoard = append(hoard, fmt.Sprintf("/g%03d/%s", i, strings.Repeat("y", 180)))
	}
	hoard = append(hoard, "/parents")
	h.kc.AddUser(&oidctest.User{Username: "hoarder", Email: "hoarder@example.com", EmailVerified: true, Groups: hoard})
	b = h.browser()
	resp, body = b.signIn("https://request.example.com/", "hoarder")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("user with %d long groups: %d %s", len(hoard), resp.StatusCode, body)
	}
}

// Renewal: past refresh_interval the next request renews the session with
// the refresh token (once, however many requests arrive together, since
// this provider rotates refresh tokens), and group changes at the provider
// apply from then on.
func TestRenewalWithRefreshToken(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	b := h.browser()
	b.signIn("https://request.example.com/", "alice")
	_, refreshes := h.kc.Counts()

	h.clock.Advance(6 * time.Minute)
	var wg sync.WaitGroup
	codes := make([]int, 12)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := b.c.Get(fmt.Sprintf("https://photos.example.com/thumb/%d", i))
			if err == nil {
				codes[i] = resp.StatusCode
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("request %d during renewal: %d", i, c)
		}
	}
	if _, r := h.kc.Counts(); r != refreshes+1 {
		t.Errorf("%d refresh grants for one renewal, want 1", r-refreshes)
	}
	renewed := b.findResponse(func(r *http.Response) bool {
		return sessionCookieSet(r) && strings.HasPrefix(r.Request.URL.Path, "/thumb/")
	})
	if renewed == nil {
		t.Fatal("no renewed session cookie")
	}
	// Still signed in long after Keycloak's 30-minute idle, as long as
	// the session keeps being renewed.
	for i := 0; i < 4; i++ {
		h.clock.Advance(20 * time.Minute)
		if !b.signedIn() {
			t.Fatalf("signed out after %d renewals", i)
		}
	}

	// The provider takes alice out of /parents and the role: it applies at
	// the next renewal.
	h.kc.Update("alice", func(u *oidctest.User) { u.Groups, u.RealmRoles = []string{"/family"}, nil })
	if resp, _ := b.get("https://request.example.com/"); resp.StatusCode != http.StatusOK {
		t.Errorf("before renewal: %d", resp.StatusCode)
	}
	h.clock.Advance(6 * time.Minute)
	if resp, _ := b.get("https://request.example.com/"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("after renewal without the group: %d, want 403", resp.StatusCode)
	}
}

// A user disabled at the provider keeps access at most refresh_interval
// (the documented bound), then the renewal fails and they are out.
func TestDisabledUserLosesAccess(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	b := h.browser()
	b.signIn("https://photos.example.com/", "kid")
	h.kc.Update("kid", func(u *oidctest.User) { u.Disabled = true })

	h.clock.Advance(4 * time.Minute)
	if !b.signedIn() {
		t.Fatal("signed out before refresh_interval passed")
	}
	h.clock.Advance(time.Minute + time.Second)
	b.noRedirects(true)
	resp, _ := b.get("https://photos.example.com/")
	b.noRedirects(false)
	if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/protocol/openid-connect/auth") {
		t.Errorf("disabled user after the bound: %d %q, want a sign-in redirect", resp.StatusCode, resp.Header.Get("Location"))
	}
	if !strings.Contains(findSetCookie(resp, "__Secure-gatehouse="), "Max-Age=0") {
		t.Errorf("session cookie not cleared: %q", resp.Header.Values("Set-Cookie"))
	}
	// An API call gets 401, and signing in again is refused by the
	// provider.
	resp, body := b.get("https://photos.example.com/x", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("API call of a disabled user: %d %s", resp.StatusCode, body)
	}
}

func TestLogoutEndsProviderSession(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	b := h.browser()
	b.signIn("https://photos.example.com/", "alice")
	old := b.cookie("__Secure-gatehouse")

	// The logout page is a button, not an action.
	resp, body := b.get("https://photos.example.com/.gatehouse/logout")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `method="post"`) || !b.signedIn() {
		t.Fatalf("GET logout: %d %s", resp.StatusCode, body)
	}
	// A cross-site POST does nothing.
	req, _ := http.NewRequest(http.MethodPost, "https://photos.example.com/.gatehouse/logout", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.com")
	if resp, _ := b.do(req); resp.StatusCode != http.StatusForbidden || !b.signedIn() {
		t.Fatalf("cross-site logout: %d", resp.StatusCode)
	}

	req, _ = http.NewRequest(http.MethodPost, "https://photos.example.com/.gatehouse/logout", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", "https://photos.example.com")
	resp, body = b.do(req)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != "https://photos.example.com/.gatehouse/signed-out" {
		t.Fatalf("logout ended at %s: %d %s", resp.Request.URL, resp.StatusCode, body)
	}
	h.kc.Mu.Lock()
	calls := h.kc.EndSessions
	h.kc.Mu.Unlock()
	if len(calls) != 1 {
		t.Fatalf("%d end_session calls", len(calls))
	}
	es := calls[0]
	if es.Get("id_token_hint") == "" || es.Get("post_logout_redirect_uri") != "https://photos.example.com/.gatehouse/signed-out" ||
		es.Get("client_id") != oidctest.ClientID {
		t.Errorf("end_session got %v", es)
	}
	if len(h.kc.SessionsOf("alice")) != 0 {
		t.Error("the provider session is still active")
	}
	if b.signedIn() {
		t.Error("still signed in after logout")
	}
	// The old cookie, replayed, is refused.
	replay := h.browser()
	u, _ := url.Parse("https://photos.example.com/")
	replay.jar.SetCookies(u, []*http.Cookie{old})
	if replay.signedIn() {
		t.Error("a logged-out session cookie still works")
	}
}

func TestBackChannelLogout(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	a1, a2, bob := h.browser(), h.browser(), h.browser()
	a1.signIn("https://photos.example.com/", "alice")
	sid1 := h.kc.SessionsOf("alice")
	a2.signIn("https://photos.example.com/", "alice")
	bob.signIn("https://photos.example.com/", "bob")
	if len(sid1) != 1 || len(h.kc.SessionsOf("alice")) != 2 {
		t.Fatalf("provider sessions: %v then %v", sid1, h.kc.SessionsOf("alice"))
	}

	// What Keycloak does: POST a logout_token to the client's back-channel
	// logout URL.
	op := h.browser()
	post := func(token string) int {
		req, _ := http.NewRequest(http.MethodPost, "https://photos.example.com/.gatehouse/backchannel-logout",
			strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, _ := op.do(req)
		return resp.StatusCode
	}
	// Keycloak ended the session, then tells the client.
	h.kc.EndSID(sid1[0])
	tok := h.kc.LogoutToken("id-alice", sid1[0], nil)
	if code := post(tok); code != http.StatusOK {
		t.Fatalf("logout_token for one session: %d", code)
	}
	if a1.signedIn() {
		t.Error("the logged-out session still works")
	}
	if !a2.signedIn() || !bob.signedIn() {
		t.Error("other sessions ended too")
	}
	if code := post(tok); code != http.StatusBadRequest {
		t.Errorf("replayed logout_token: %d", code)
	}

	// Refused tokens end nothing.
	for name, mutate := range map[string]func(map[string]any){
		"nonce (an ID token)": func(c map[string]any) { c["nonce"] = "n" },
		"no event":            func(c map[string]any) { delete(c, "events") },
		"other audience":      func(c map[string]any) { c["aud"] = "someone-else" },
		"other issuer":        func(c map[string]any) { c["iss"] = "https://evil.example.com/realms/home" },
		"old":                 func(c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() },
		"expired":             func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() },
		"no sub or sid":       func(c map[string]any) { delete(c, "sub"); delete(c, "sid") },
	} {
		if code := post(h.kc.LogoutToken("id-bob", "", mutate)); code != http.StatusBadRequest {
			t.Errorf("%s: %d", name, code)
		}
	}
	forged := mustSign(t)(oidctest.SignJWT(oidctest.NewKey(h.kc.Keys[0].ID(), mustKey(t)), map[string]any{
		"iss": h.kc.Issuer, "aud": oidctest.ClientID, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(),
		"jti": "forged", "sub": "id-bob",
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}))
	if code := post(forged); code != http.StatusBadRequest {
		t.Errorf("forged signature: %d", code)
	}
	if !bob.signedIn() {
		t.Fatal("a refused token ended bob's session")
	}
	if resp, _ := op.get("https://photos.example.com/.gatehouse/backchannel-logout"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET back-channel logout: %d", resp.StatusCode)
	}

	// A token with only sub ends every session of the user.
	if code := post(h.kc.LogoutToken("id-alice", "", nil)); code != http.StatusOK {
		t.Fatalf("sub-only logout_token: %d", code)
	}
	if a2.signedIn() {
		t.Error("alice's second session survived a sub-wide logout")
	}
	if !bob.signedIn() {
		t.Error("bob's session ended")
	}
	// Signing in again afterwards works.
	if resp, _ := a1.signIn("https://photos.example.com/", "alice"); resp.StatusCode != http.StatusOK || !a1.signedIn() {
		t.Error("cannot sign in again after a back-channel logout")
	}
}

func TestNonBrowserCallersGet401JSON(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	b := h.browser()
	b.noRedirects(true)
	for name, hdr := range map[string][]string{
		"fetch":       {"Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty", "Accept", "*/*"},
		"image":       {"Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image"},
		"xhr":         {"X-Requested-With", "XMLHttpRequest"},
		"json client": {"Sec-Fetch-Mode", "", "Sec-Fetch-Dest", "", "Accept", "application/json"},
		"curl":        {"Sec-Fetch-Mode", "", "Sec-Fetch-Dest", "", "Accept", "*/*"},
	} {
		req, _ := http.NewRequest(http.MethodGet, "https://photos.example.com/api-ish/x", nil)
		for i := 0; i < len(hdr); i += 2 {
			req.Header[hdr[i]] = []string{hdr[i+1]}
		}
		resp, body := b.do(req)
		check401(t, name, resp, body)
	}
	req, _ := http.NewRequest(http.MethodPost, "https://photos.example.com/upload", strings.NewReader("x"))
	resp, body := b.do(req)
	check401(t, "POST", resp, body)

	resp, _ = b.get("https://photos.example.com/")
	if resp.StatusCode != http.StatusFound {
		t.Errorf("navigation: %d, want a redirect", resp.StatusCode)
	}
	// The app path of the family route needs no sign-in.
	resp, body = b.get("https://photos.example.com/api/server/ping", "Accept", "application/json")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("app path: %d %s", resp.StatusCode, body)
	}
}

func check401(t *testing.T, name string, resp *http.Response, body string) {
	t.Helper()
	var j map[string]string
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		json.Unmarshal([]byte(body), &j) != nil || j["error"] != "sign_in_required" ||
		j["sign_in"] != "https://photos.example.com/.gatehouse/login" || resp.Header.Get("Location") != "" {
		t.Errorf("%s: %d %q %s", name, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if findSetCookie(resp, flowCookiePrefix) != "" {
		t.Errorf("%s: a sign-in was started for a client that cannot finish it", name)
	}
}

func TestGroupRestrictedRoute(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	for user, want := range map[string]int{
		"kid":   http.StatusForbidden, // only /family
		"alice": http.StatusOK,        // /parents (ID token groups)
		"bob":   http.StatusOK,        // client role family-admin (access token only)
	} {
		b := h.browser()
		resp, body := b.signIn("https://request.example.com/", user)
		if resp.StatusCode != want {
			t.Errorf("%s on the /parents route: %d, want %d (%s)", user, resp.StatusCode, want, body)
		}
		if want == http.StatusForbidden && (!strings.Contains(body, "kid@example.com") ||
			!strings.Contains(body, `<input type="hidden" name="again" value="/">`)) {
			t.Errorf("denial does not say who, or offers no other account: %s", body)
		}
	}
}

func TestEmailWithTwoAtsRefused(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	b := h.browser()
	resp, body := b.signIn("https://photos.example.com/", "mallory")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "email address") {
		t.Errorf("two-@ email: %d %s", resp.StatusCode, body)
	}
	if b.cookie("__Secure-gatehouse") != nil || b.signedIn() {
		t.Error("a session was made for a two-@ email")
	}
}

// The provider down: family routes answer 503 "sign-in unavailable" while
// app routes and app paths work; sign-in starts working by itself when the
// provider comes up, stops when it goes down, and sessions survive it.
// With outage_grace = "0" a session too waits for the provider (the
// grace itself: outage_test.go).
func TestProviderDownThenUp(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: false, oidcExtra: `outage_grace = "0"`})
	b := h.browser()
	if h.si.Ready() {
		t.Fatal("ready without a provider")
	}
	resp, body := b.get("https://photos.example.com/")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "Sign-in unavailable") {
		t.Errorf("family route, provider down: %d %s", resp.StatusCode, body)
	}
	resp, body = b.get("https://photos.example.com/.gatehouse/login")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("login, provider down: %d %s", resp.StatusCode, body)
	}
	for _, u := range []string{"https://passwords.example.com/", "https://photos.example.com/api/ping"} {
		if resp, body := b.get(u); resp.StatusCode != http.StatusOK {
			t.Errorf("%s, provider down: %d %s", u, resp.StatusCode, body)
		}
	}

	h.kc.Start()
	h.waitReady()
	if resp, body := b.signIn("https://photos.example.com/", "alice"); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in after the provider came up: %d %s", resp.StatusCode, body)
	}

	h.kc.Stop()
	for deadline := time.Now().Add(20 * time.Second); h.si.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("still ready with the provider gone")
		}
	}
	if resp, _ := b.get("https://photos.example.com/"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("family route with a session, provider down: %d", resp.StatusCode)
	}
	if resp, _ := b.get("https://passwords.example.com/"); resp.StatusCode != http.StatusOK {
		t.Errorf("app route, provider down again: %d", resp.StatusCode)
	}
	h.kc.Start()
	h.waitReady()
	if !b.signedIn() {
		t.Error("session lost across the provider's outage")
	}
}

// The provider rotates its signing key (the old one leaves the JWKS): new
// sign-ins and renewals verify with the new key.
func TestProviderKeyRotation(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	b := h.browser()
	b.signIn("https://photos.example.com/", "alice")
	h.kc.RotateKey()
	if resp, body := h.browser().signIn("https://photos.example.com/", "bob"); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in after key rotation: %d %s", resp.StatusCode, body)
	}
	h.clock.Advance(6 * time.Minute)
	if !b.signedIn() {
		t.Error("renewal after key rotation failed")
	}
}

// The cookie key file: created 0600 in a 0700 directory when absent; a new
// key put first keeps the old cookies working (re-sealed with the new key
// on use); a key removed from the file makes its cookies worthless.
func TestCookieKeyFileRotation(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	path := h.cfg.OIDC.CookieKeyFile
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Errorf("key dir mode %v", di.Mode().Perm())
	}
	oldKeys, _ := os.ReadFile(path)

	b := h.browser()
	b.signIn("https://photos.example.com/", "alice")
	before := b.cookie("__Secure-gatehouse").Value

	rebuild := func() {
		t.Helper()
		next, err := New(h.cfg.OIDC, Options{Table: h.gw.Table, Log: testLogger(t), HTTPClient: h.client, Now: h.clock.Now, Previous: h.si,
			RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, ProbeEvery: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		// Its background work logs through t: it must end with the test.
		t.Cleanup(next.Close)
		if !next.Ready() {
			t.Error("a rebuilt sign-in was not ready at once (provider state not kept)")
		}
		h.gw.SetSignIn(next)
		h.si.Close()
		h.si = next
	}
	newKey := "# rotated\n" + strings.Repeat("QUJD", 11) + "\n"
	if err := os.WriteFile(path, []byte(newKey+string(oldKeys)), 0o600); err != nil {
		t.Fatal(err)
	}
	rebuild()
	if !b.signedIn() {
		t.Fatal("cookie sealed with the previous key refused")
	}
	if after := b.cookie("__Secure-gatehouse").Value; after == before {
		t.Error("cookie not re-sealed with the new key")
	}
	if err := os.WriteFile(path, []byte(newKey), 0o600); err != nil {
		t.Fatal(err)
	}
	rebuild()
	if !b.signedIn() {
		t.Error("re-sealed cookie refused once the old key is gone")
	}
	stale := h.browser()
	u, _ := url.Parse("https://photos.example.com/")
	stale.jar.SetCookies(u, []*http.Cookie{{Name: "__Secure-gatehouse", Value: before, Domain: "example.com", Path: "/"}})
	if stale.signedIn() {
		t.Error("a cookie sealed with a removed key still works")
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := &routes.OIDCConfig{Issuer: "https://127.0.0.1:1/realms/x", ClientID: "c", ClientSecretFile: filepath.Join(dir, "missing"),
		CookieKeyFile: filepath.Join(dir, "k"), SessionLifetime: time.Hour, RefreshInterval: time.Minute}
	table := func() *routes.Table { return nil }
	if _, err := New(cfg, Options{Table: table}); err == nil {
		t.Error("missing secret file accepted")
	}
	os.WriteFile(cfg.ClientSecretFile, []byte("\n"), 0o600)
	if _, err := New(cfg, Options{Table: table}); err == nil {
		t.Error("empty secret accepted")
	}
	os.WriteFile(cfg.ClientSecretFile, []byte("s\n"), 0o600)
	os.WriteFile(cfg.CookieKeyFile, []byte("# only a comment\n"), 0o600)
	if _, err := New(cfg, Options{Table: table}); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Errorf("key file without a key: %v", err)
	}
	os.WriteFile(cfg.CookieKeyFile, []byte("c2hvcnQ=\n"), 0o600)
	if _, err := New(cfg, Options{Table: table}); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("short key: %v", err)
	}
}
