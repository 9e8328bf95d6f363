package signin

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// waitDown waits until sign-in has noticed the provider is gone.
func (h *harness) waitDown() {
	h.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); h.si.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			h.t.Fatal("still ready with the provider gone")
		}
	}
}

// apiClients are the requests that cannot show a page: fetch, XHR, JSON
// clients, curl.
var apiClients = map[string][]string{
	"fetch":       {"Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty", "Accept", "*/*"},
	"xhr":         {"X-Requested-With", "XMLHttpRequest"},
	"json client": {"Sec-Fetch-Mode", "", "Sec-Fetch-Dest", "", "Accept", "application/json"},
	"curl":        {"Sec-Fetch-Mode", "", "Sec-Fetch-Dest", "", "Accept", "*/*"},
}

func check503JSON(t *testing.T, what string, resp *http.Response, body string) {
	t.Helper()
	var j map[string]string
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		json.Unmarshal([]byte(body), &j) != nil || j["error"] != "sign_in_unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("%s: want 503 sign_in_unavailable JSON with Retry-After, got %d %q Retry-After %q: %s",
			what, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"), body)
	}
}

func check503Page(t *testing.T, what string, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, "Sign-in unavailable") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("%s: want the 503 page with Retry-After, got %d %q Retry-After %q: %s",
			what, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"), body)
	}
}

// While the provider is unreachable, every answer that says "sign-in
// unavailable" is JSON with Retry-After for a client that cannot show a
// page, as the 401 is, and a page for a browser — a form POST included.
func TestOutageAnswersAPIClientsWithJSON(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: false})
	b := h.browser()
	for _, path := range []string{"/albums", "/.gatehouse/login", "/.gatehouse/devices"} {
		for name, hdr := range apiClients {
			resp, body := b.get("https://photos.example.com"+path, hdr...)
			check503JSON(t, name+" "+path, resp, body)
		}
		resp, body := b.get("https://photos.example.com" + path)
		check503Page(t, "navigation "+path, resp, body)
	}
	// The devices page's own form, posted while the provider is away.
	req, _ := http.NewRequest(http.MethodPost, "https://photos.example.com/.gatehouse/devices", strings.NewReader("action=create"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, body := b.do(req)
	check503Page(t, "form POST", resp, body)
	// An upload from a script.
	req, _ = http.NewRequest(http.MethodPost, "https://photos.example.com/upload", strings.NewReader("x"))
	req.Header.Set("Sec-Fetch-Mode", "cors")
	req.Header.Set("Sec-Fetch-Dest", "empty")
	resp, body = b.do(req)
	check503JSON(t, "fetch POST", resp, body)
}

// A provider outage (a Keycloak restart) does not interrupt a signed-in
// family member: a session keeps working for outage_grace (1h by default)
// counted from its last renewal, without renewal attempts; then it waits,
// cookie kept, for the provider. New sign-ins get the 503 page meanwhile;
// back-channel logouts received before the outage still hold; renewal
// resumes when the provider is back.
func TestOutageGraceKeepsSessions(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	alice, bob := h.browser(), h.browser()
	alice.signIn("https://photos.example.com/", "alice")
	bob.signIn("https://photos.example.com/", "bob")
	// Bob signs out elsewhere; Keycloak tells gatehouse before going down.
	op := h.browser()
	req, _ := http.NewRequest(http.MethodPost, "https://photos.example.com/.gatehouse/backchannel-logout",
		strings.NewReader("logout_token="+h.kc.LogoutToken("id-bob", "", nil)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, _ := op.do(req); resp.StatusCode != http.StatusOK {
		t.Fatalf("back-channel logout: %d", resp.StatusCode)
	}

	h.kc.Stop()
	h.waitDown()
	h.clock.Advance(40 * time.Minute) // renewal long due, grace not spent
	if !alice.signedIn() {
		t.Fatal("a valid session was refused during the outage")
	}
	resp, body := alice.get("https://photos.example.com/api-ish", apiClients["fetch"]...)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("alice's API call during the outage: %d %s", resp.StatusCode, body)
	}
	bob.noRedirects(true)
	resp, body = bob.get("https://photos.example.com/")
	bob.noRedirects(false)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a session logged out before the outage: %d %s", resp.StatusCode, body)
	}
	resp, body = h.browser().get("https://photos.example.com/")
	check503Page(t, "a new sign-in during the outage", resp, body)

	// The grace is spent: alice waits for the provider, signed in still.
	h.clock.Advance(21 * time.Minute)
	resp, body = alice.get("https://photos.example.com/")
	check503Page(t, "past the grace", resp, body)
	if findSetCookie(resp, "__Secure-gatehouse=") != "" {
		t.Errorf("the session cookie was touched past the grace: %q", resp.Header.Values("Set-Cookie"))
	}
	resp, body = alice.get("https://photos.example.com/api-ish", apiClients["fetch"]...)
	check503JSON(t, "API call past the grace", resp, body)

	_, refreshes := h.kc.Counts()
	h.kc.Start()
	h.waitReady()
	alice.resetLog()
	if !alice.signedIn() {
		t.Fatal("the session did not resume when the provider came back")
	}
	if _, r := h.kc.Counts(); r != refreshes+1 || alice.findResponse(sessionCookieSet) == nil {
		t.Errorf("no renewal when the provider came back: %d refresh grants", r-refreshes)
	}
	if bob.signedIn() {
		t.Error("bob's logged-out session came back with the provider")
	}
}

// A Keycloak in the middle of a restart answers discovery but fails the
// token request: the renewal fails as provider trouble, and the session
// rides on within the grace instead of answering 503 at once.
func TestRenewalDuringRestartKeepsSession(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	alice := h.browser()
	alice.signIn("https://photos.example.com/", "alice")
	h.kc.Mu.Lock()
	h.kc.TokensDown = true
	h.kc.Mu.Unlock()
	h.clock.Advance(6 * time.Minute)
	if !alice.signedIn() {
		t.Fatal("a failed renewal (provider trouble) ended a session within the grace")
	}
	h.kc.Mu.Lock()
	h.kc.TokensDown = false
	h.kc.Mu.Unlock()
	h.waitReady()
	if !alice.signedIn() {
		t.Fatal("signed out after the provider recovered")
	}
}

// outage_grace = "0" keeps the strict rule: every family request answers
// 503 while the provider is unreachable, a valid session too.
func TestOutageGraceZero(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true, oidcExtra: `outage_grace = "0"`})
	alice := h.browser()
	alice.signIn("https://photos.example.com/", "alice")
	h.kc.Stop()
	h.waitDown()
	resp, body := alice.get("https://photos.example.com/")
	check503Page(t, "session during the outage, grace 0", resp, body)
	h.kc.Start()
	h.waitReady()
	if !alice.signedIn() {
		t.Error("session lost across the outage")
	}
}
