package signin

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The split cookies and what they mean for renewal, restarts, WebSocket
// upgrades, old cookies and logout.

// restart replaces the gateway's sign-in with a new one built from the
// same configuration (the same key file) and nothing else: empty memory,
// as after a restart of gatehouse.
func (h *harness) restart() {
	h.t.Helper()
	next, err := New(h.cfg.OIDC, h.signInOptions(harnessOpts{}))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(next.Close)
	h.gw.SetSignIn(next)
	h.si.Close()
	h.si = next
	h.waitReady()
}

// jarCookies are the cookies b sends to u.
func (b *browser) jarCookies(u string) []*http.Cookie {
	pu, err := url.Parse(u)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.jar.Cookies(pu)
}

// sessionOf opens the session b sends to the family host.
func (h *harness) sessionOf(b *browser) *session {
	h.t.Helper()
	r, _ := http.NewRequest(http.MethodGet, "https://photos.example.com/", nil)
	for _, c := range b.jarCookies("https://photos.example.com/") {
		r.AddCookie(c)
	}
	sess, _ := h.si.readSession(nil, r)
	if sess == nil {
		h.t.Fatal("the browser's session cookie does not open")
	}
	return sess
}

// setCookieLine is the Set-Cookie line of resp for name (exactly), or "".
func setCookieLine(resp *http.Response, name string) string {
	return findSetCookie(resp, name+"=")
}

// The session cookie a browser sends with every request holds what judging
// the request needs and no token; the tokens go in a cookie of their own
// that browsers send to /.gatehouse/ only.
func TestSessionCookieHoldsNoToken(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	b := h.browser()
	b.signIn("https://photos.example.com/", "alice")
	cb := b.findResponse(func(r *http.Response) bool { return r.Request.URL.Path == callbackPath })
	tok := setCookieLine(cb, tokensCookie)
	for _, want := range []string{"Path=/.gatehouse/", "Domain=example.com", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(tok, "; "+want) {
			t.Errorf("tokens cookie %q lacks %s", tok, want)
		}
	}
	if sess := setCookieLine(cb, "__Secure-gatehouse"); !strings.Contains(sess, "; Path=/;") && !strings.HasSuffix(sess, "; Path=/") {
		t.Errorf("session cookie %q is not Path=/", sess)
	}

	sent := b.jarCookies("https://photos.example.com/anything/at/all")
	size := 0
	for _, c := range sent {
		if c.Name == tokensCookie || strings.HasPrefix(c.Name, tokensCookie+"-") {
			t.Errorf("the tokens cookie is sent to an ordinary path: %s", c.Name)
		}
		if c.Name == "__Secure-gatehouse" {
			size = len(c.Name) + 1 + len(c.Value)
		}
	}
	// Today's session cookie is some hundred bytes; with the tokens
	// inside it was four times that.
	if size == 0 || size > 700 {
		t.Errorf("the session cookie sent with every request is %d bytes", size)
	}
	pt, _, err := h.si.keys.open(purposeSession, b.cookie("__Secure-gatehouse").Value, h.si.ad)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(pt, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"rt", "it"} {
		if _, ok := fields[k]; ok {
			t.Errorf("the session cookie carries %q", k)
		}
	}
	if strings.Contains(string(pt), "eyJ") {
		t.Errorf("the session cookie carries a JWT: %s", pt)
	}
	if fields["v"] != float64(sessionVersion) || fields["em"] != "alice@example.com" {
		t.Errorf("session record %s", pt)
	}

	found := false
	for _, c := range b.jarCookies("https://photos.example.com/.gatehouse/renew") {
		if c.Name == tokensCookie {
			found = true
			sess := h.sessionOf(b)
			pt, _, err := h.si.keys.open(purposeTokens, c.Value, h.si.tokensAD(sess.ID))
			if err != nil {
				t.Fatalf("tokens cookie: %v", err)
			}
			tk, err := unmarshalTokens(pt)
			if err != nil || tk.Refresh == "" || !strings.HasPrefix(tk.IDToken, "eyJ") {
				t.Errorf("tokens cookie holds %s (%v)", pt, err)
			}
			// Bound to its session: it does not open for another.
			if _, _, err := h.si.keys.open(purposeTokens, c.Value, h.si.tokensAD("other-session")); err == nil {
				t.Error("the tokens cookie opens for another session")
			}
		}
	}
	if !found {
		t.Error("the browser does not send the tokens cookie to /.gatehouse/")
	}
	if !b.signedIn() {
		t.Error("not signed in with the small cookie")
	}
}

// Renewal of an ordinary request comes from memory: the request carries no
// token, is answered at once, and its answer sets both new cookies.
func TestRenewalFromMemory(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	b := h.browser()
	b.signIn("https://photos.example.com/", "alice")
	oldTokens := b.cookie(tokensCookie) // nil: not sent to "/"
	if oldTokens != nil {
		t.Fatalf("tokens cookie sent to /: %v", oldTokens)
	}
	before := tokensValue(b)
	_, refreshes := h.kc.Counts()
	h.clock.Advance(6 * time.Minute)
	b.noRedirects(true)
	resp, body := b.get("https://photos.example.com/albums", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty")
	b.noRedirects(false)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("due request: %d %s (Location %q)", resp.StatusCode, body, resp.Header.Get("Location"))
	}
	if c := resp.Request.Header.Get("Cookie"); strings.Contains(c, tokensCookie) {
		t.Errorf("the request carried the tokens cookie: %q", c)
	}
	if _, r := h.kc.Counts(); r != refreshes+1 {
		t.Errorf("%d refresh grants, want 1", r-refreshes)
	}
	if !sessionCookieSet(resp) {
		t.Error("renewal set no session cookie")
	}
	if tok := setCookieLine(resp, tokensCookie); !strings.Contains(tok, "; Path=/.gatehouse/") || strings.Contains(tok, "Max-Age=0") {
		t.Errorf("renewal's tokens cookie: %q", tok)
	}
	if after := tokensValue(b); after == "" || after == before {
		t.Error("the tokens cookie was not renewed (the provider rotates refresh tokens)")
	}
	// The renewed tokens work for the next renewal, also from the cookie
	// after a restart.
	h.clock.Advance(6 * time.Minute)
	if !b.signedIn() {
		t.Fatal("second renewal failed")
	}
	h.restart()
	h.clock.Advance(6 * time.Minute)
	if resp, body := b.get("https://photos.example.com/again"); resp.StatusCode != http.StatusOK {
		t.Fatalf("renewal after restart with the renewed tokens cookie: %d %s", resp.StatusCode, body)
	}
}

func tokensValue(b *browser) string {
	for _, c := range b.jarCookies("https://photos.example.com/.gatehouse/") {
		if c.Name == tokensCookie {
			return c.Value
		}
	}
	return ""
}

// After a restart gatehouse holds no tokens: a request due for its check
// goes through /.gatehouse/renew (307, same method), which reads the tokens
// cookie, renews, sets both cookies and sends it back (307).
func TestRenewalAfterRestart(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	b := h.browser()
	b.signIn("https://photos.example.com/", "alice")
	h.restart()
	if !b.signedIn() {
		t.Fatal("a restart signed alice out")
	}
	_, refreshes := h.kc.Counts()
	h.clock.Advance(6 * time.Minute)

	b.noRedirects(true)
	const uri = "/albums/7?sort=date&q=a%20b"
	resp, _ := b.get("https://photos.example.com"+uri, "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty")
	want := "/.gatehouse/renew?rd=" + url.QueryEscape(uri)
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != want {
		t.Fatalf("due request after restart: %d Location %q, want 307 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	if len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("the trip to renew changed cookies: %q", resp.Header.Values("Set-Cookie"))
	}
	resp, _ = b.get("https://photos.example.com"+want, "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty")
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != uri {
		t.Fatalf("renew: %d Location %q, want 307 to %q", resp.StatusCode, resp.Header.Get("Location"), uri)
	}
	if !sessionCookieSet(resp) || !strings.Contains(setCookieLine(resp, tokensCookie), "Path=/.gatehouse/") {
		t.Errorf("renew did not set both cookies: %q", resp.Header.Values("Set-Cookie"))
	}
	if _, r := h.kc.Counts(); r != refreshes+1 {
		t.Errorf("%d refresh grants, want 1", r-refreshes)
	}
	resp, body := b.get("https://photos.example.com"+uri, "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty")
	b.noRedirects(false)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("back from renew: %d %s", resp.StatusCode, body)
	}
	if s := decodeSeen(t, body); s.Path != "/albums/7" || s.Query != "sort=date&q=a%20b" {
		t.Errorf("backend got %q ? %q", s.Path, s.Query)
	}

	// A POST keeps its method and body through both 307s.
	h.restart()
	h.clock.Advance(6 * time.Minute)
	b.resetLog()
	req, _ := http.NewRequest(http.MethodPost, "https://photos.example.com/upload", strings.NewReader("photo"))
	req.Header.Set("Sec-Fetch-Mode", "cors")
	if resp, body := b.do(req); resp.StatusCode != http.StatusOK || resp.Request.Method != http.MethodPost || decodeSeen(t, body).Path != "/upload" {
		t.Errorf("POST through renew: %d %s %s", resp.StatusCode, resp.Request.Method, body)
	}
	if b.findResponse(func(r *http.Response) bool { return r.Request.URL.Path == renewPath }) == nil {
		t.Error("the POST did not go through renew")
	}

	// renew returns only to a path of its own host.
	for _, rd := range []string{"", "https://files.example.com/", "//evil.com/", "/\\evil.com", "https://evil.com/", "/%09/evil.com"} {
		resp, _ := b.get("https://photos.example.com/.gatehouse/renew?rd=" + url.QueryEscape(rd))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("renew rd=%q: %d %q", rd, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// A /.gatehouse/ request is never sent to renew: it carries the
	// tokens cookie, or the session is over.
	h.restart()
	h.clock.Advance(6 * time.Minute)
	if resp, body := b.get("https://photos.example.com/.gatehouse/devices"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "alice@example.com") {
		t.Errorf("devices page, due after restart: %d %s", resp.StatusCode, body)
	}

	// Without its tokens cookie the session cannot be renewed: renew ends
	// it, and the way back is a sign-in, never another trip.
	h.restart()
	h.clock.Advance(6 * time.Minute)
	lone := h.browser()
	u, _ := url.Parse("https://photos.example.com/")
	alone := b.cookie("__Secure-gatehouse").Value
	lone.jar.SetCookies(u, []*http.Cookie{{Name: "__Secure-gatehouse", Value: alone, Domain: "example.com", Path: "/"}})
	lone.noRedirects(true)
	resp, _ = lone.get("https://photos.example.com/x")
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("due, no tokens: %d", resp.StatusCode)
	}
	resp, _ = lone.get("https://photos.example.com" + resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != "/x" ||
		!strings.Contains(setCookieLine(resp, "__Secure-gatehouse"), "Max-Age=0") {
		t.Fatalf("renew without tokens: %d %q %q", resp.StatusCode, resp.Header.Get("Location"), resp.Header.Values("Set-Cookie"))
	}
	resp, _ = lone.get("https://photos.example.com/x")
	if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/protocol/openid-connect/auth") {
		t.Errorf("after renew without tokens: %d %q, want a sign-in", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A copy of that cookie is over too: straight to sign-in, no trip.
	copyCat := h.browser()
	copyCat.jar.SetCookies(u, []*http.Cookie{{Name: "__Secure-gatehouse", Value: alone, Domain: "example.com", Path: "/"}})
	copyCat.noRedirects(true)
	if resp, _ := copyCat.get("https://photos.example.com/y"); resp.StatusCode != http.StatusFound {
		t.Errorf("a copy of the ended cookie: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// A WebSocket upgrade cannot follow a redirect: due for its check with no
// tokens in memory, it is refused as a request without a session (401),
// never let through unrenewed.
func TestUpgradeDueWithoutTokensRefused(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	b := h.browser()
	b.signIn("https://photos.example.com/", "alice")
	h.restart()
	upgrade := func() (*http.Response, string) {
		b.noRedirects(true)
		defer b.noRedirects(false)
		return b.get("https://photos.example.com/api-socket",
			"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13",
			"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-Fetch-Mode", "websocket", "Sec-Fetch-Dest", "empty")
	}
	if resp, body := upgrade(); resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusTemporaryRedirect {
		t.Fatalf("upgrade of a session not due: %d %s", resp.StatusCode, body)
	}
	h.clock.Advance(6 * time.Minute)
	h.mu.Lock()
	seen := len(h.seen)
	h.mu.Unlock()
	resp, body := upgrade()
	check401(t, "due upgrade without tokens", resp, body)
	h.mu.Lock()
	if len(h.seen) != seen {
		t.Error("the backend got the refused upgrade")
	}
	h.mu.Unlock()
	if len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("the refusal touched cookies: %q", resp.Header.Values("Set-Cookie"))
	}
	// Any other request of the page renews it; then the upgrade passes.
	if resp, body := b.get("https://photos.example.com/page"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the trip through renew: %d %s", resp.StatusCode, body)
	}
	if resp, body := upgrade(); resp.StatusCode == http.StatusUnauthorized {
		t.Errorf("upgrade after renewal: %d %s", resp.StatusCode, body)
	}
}

// A session cookie of version 1 (tokens inside) still opens, also after a
// restart, and on its first use is resealed into the two cookies of
// today; its tokens renew it.
func TestOldSessionCookieAcceptedAndResealed(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	b := h.browser()
	b.signIn("https://photos.example.com/", "alice")
	sess := h.sessionOf(b)
	toks, ok := h.si.held.get(sess.ID)
	if !ok {
		t.Fatal("no tokens in memory after sign-in")
	}
	// The layout version 1 sealed.
	v1, _ := json.Marshal(map[string]any{
		"v": legacySessionVersion, "id": sess.ID, "sub": sess.Sub, "em": sess.Email, "nm": sess.Name, "un": sess.Username,
		"sid": sess.SID, "g": sess.Groups, "c": sess.Created, "x": sess.Expires, "ck": sess.Checked,
		"rt": toks.Refresh, "it": toks.IDToken,
	})
	val, err := h.si.keys.seal(purposeSession, v1, h.si.sessionAD())
	if err != nil {
		t.Fatal(err)
	}
	h.restart()
	old := h.browser()
	u, _ := url.Parse("https://photos.example.com/")
	old.jar.SetCookies(u, []*http.Cookie{{Name: "__Secure-gatehouse", Value: val, Domain: "example.com", Path: "/"}})
	old.noRedirects(true)
	resp, body := old.get("https://photos.example.com/whoami")
	old.noRedirects(false)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("version 1 cookie: %d %s", resp.StatusCode, body)
	}
	if !sessionCookieSet(resp) || !strings.Contains(setCookieLine(resp, tokensCookie), "Path=/.gatehouse/") {
		t.Fatalf("version 1 cookie not resealed into two: %q", resp.Header.Values("Set-Cookie"))
	}
	nv := old.cookie("__Secure-gatehouse").Value
	pt, _, err := h.si.keys.open(purposeSession, nv, h.si.ad)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(pt), `"rt"`) || !strings.Contains(string(pt), `"v":2`) {
		t.Errorf("resealed session: %s", pt)
	}
	if got := h.sessionOf(old); got.ID != sess.ID || got.Email != "alice@example.com" {
		t.Errorf("resealed session is another: %+v", got)
	}
	// Its tokens renew it, from memory now and from the new tokens
	// cookie after another restart.
	_, refreshes := h.kc.Counts()
	h.clock.Advance(6 * time.Minute)
	old.noRedirects(true)
	resp, _ = old.get("https://photos.example.com/whoami")
	old.noRedirects(false)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("renewal of a resealed version 1 session: %d", resp.StatusCode)
	}
	if _, r := h.kc.Counts(); r != refreshes+1 {
		t.Errorf("%d refresh grants, want 1", r-refreshes)
	}
	h.restart()
	h.clock.Advance(6 * time.Minute)
	if resp, body := old.get("https://photos.example.com/whoami"); resp.StatusCode != http.StatusOK {
		t.Errorf("after another restart: %d %s", resp.StatusCode, body)
	}
}

// Logout sends id_token_hint also when gatehouse no longer holds the ID
// token (restarted since): it comes from the tokens cookie, which goes to
// /.gatehouse/logout; both cookies are cleared.
func TestLogoutHintFromTokensCookie(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	b := h.browser()
	b.signIn("https://photos.example.com/", "alice")
	sess := h.sessionOf(b)
	toks, _ := h.si.held.get(sess.ID)
	h.restart()
	req, _ := http.NewRequest(http.MethodPost, "https://photos.example.com/.gatehouse/logout", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	b.noRedirects(true)
	resp, _ := b.do(req)
	b.noRedirects(false)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || err != nil {
		t.Fatalf("logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if hint := loc.Query().Get("id_token_hint"); hint == "" || hint != toks.IDToken {
		t.Errorf("id_token_hint = %q, want the session's ID token", hint)
	}
	if c := setCookieLine(resp, tokensCookie); !strings.Contains(c, "Max-Age=0") || !strings.Contains(c, "Path=/.gatehouse/") {
		t.Errorf("logout did not clear the tokens cookie: %q", resp.Header.Values("Set-Cookie"))
	}
	if _, held := h.si.held.get(sess.ID); held {
		t.Error("logout left the tokens in memory")
	}
}

// Back-channel logout drops the ended sessions' tokens from memory.
func TestBackChannelLogoutDropsTokens(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	a, bob := h.browser(), h.browser()
	a.signIn("https://photos.example.com/", "alice")
	bob.signIn("https://photos.example.com/", "bob")
	as, bs := h.sessionOf(a), h.sessionOf(bob)
	sids := h.kc.SessionsOf("alice")
	if len(sids) != 1 {
		t.Fatalf("alice's provider sessions: %v", sids)
	}
	h.kc.EndSID(sids[0])
	req, _ := http.NewRequest(http.MethodPost, "https://photos.example.com/.gatehouse/backchannel-logout",
		strings.NewReader(url.Values{"logout_token": {h.kc.LogoutToken("id-alice", sids[0], nil)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, body := h.browser().do(req); resp.StatusCode != http.StatusOK {
		t.Fatalf("back-channel logout: %d %s", resp.StatusCode, body)
	}
	if _, held := h.si.held.get(as.ID); held {
		t.Error("the ended session's tokens are still in memory")
	}
	if _, held := h.si.held.get(bs.ID); !held {
		t.Error("another user's tokens were dropped")
	}
	if a.signedIn() || !bob.signedIn() {
		t.Error("the logout did not end exactly alice's session")
	}
}
