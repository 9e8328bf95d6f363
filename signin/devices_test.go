package signin

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"gatehouse/devices"
	"gatehouse/ratelimit"
	"gatehouse/signin/oidctest"
)

var (
	csrfRE  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	tokenRE = regexp.MustCompile(`<code id="token">(ghd_[A-Za-z0-9_-]+)</code>`)
)

// devicesPage opens the devices page and returns its form token.
func (b *browser) devicesCSRF() string {
	b.t.Helper()
	resp, body := b.get("https://photos.example.com/.gatehouse/devices")
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("devices page: %d %s", resp.StatusCode, body)
	}
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no form token on the devices page: %s", body)
	}
	return m[1]
}

// postDevices posts the devices form as the page itself would.
func (b *browser) postDevices(form url.Values, hdr ...string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "https://photos.example.com/.gatehouse/devices", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://photos.example.com")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

// makeToken makes a device token on the page and returns it.
func (b *browser) makeToken(name string) string {
	b.t.Helper()
	resp, body := b.postDevices(url.Values{"csrf": {b.devicesCSRF()}, "action": {"create"}, "name": {name}})
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("make token: %d %s", resp.StatusCode, body)
	}
	m := tokenRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no token shown: %s", body)
	}
	if !strings.Contains(body, `src="data:image/png;base64,`) {
		b.t.Errorf("no QR code shown with the token")
	}
	return m[1]
}

// app is a phone app: no cookie jar, no browser headers.
func (h *harness) app() *http.Client {
	doorAddr := h.door.Listener.Addr().String()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig: tlsClientConfig(oidctest.CertPool()),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, doorAddr)
		},
	}
	h.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func appGet(t *testing.T, c *http.Client, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func checkTokenRefused(t *testing.T, what string, resp *http.Response, body string) {
	t.Helper()
	var j map[string]string
	if resp.StatusCode != http.StatusUnauthorized || json.Unmarshal([]byte(body), &j) != nil || j["error"] != "invalid_device_token" {
		t.Errorf("%s: want 401 invalid_device_token JSON, got %d %s", what, resp.StatusCode, body)
	}
}

func noTokenSeen(t *testing.T, s backendSeen) {
	t.Helper()
	for k := range s.Header {
		if strings.Contains(strings.ToLower(k), "gatehouse") {
			t.Errorf("backend saw %s: %q", k, s.Header[k])
		}
	}
	if c := s.Header.Get("Cookie"); c != "" {
		t.Errorf("backend saw a cookie: %q", c)
	}
}

// The device token life: made on the page after sign-in, it passes family
// routes without a cookie (and never reaches the backend); a wrong token
// gets 401 JSON; revoked by its owner on the page or by the admin in the
// file, it is refused on the very next request.
func TestDeviceTokenLifecycle(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true, limits: ratelimit.NewRegistry(1000)})
	b := h.browser()
	if resp, body := b.signIn("https://photos.example.com/", "alice"); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	tv := b.makeToken("Mum's TV")
	phone := b.makeToken("Alice's phone")
	if tv == phone {
		t.Fatal("two tokens are the same")
	}
	// Only hashes are stored, in a private file.
	file := h.cfg.OIDC.DeviceTokenFile
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), tv) || strings.Contains(string(data), tv[len(devices.Prefix):]) {
		t.Error("the token itself is stored")
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}

	app := h.app()
	resp, body := appGet(t, app, "https://photos.example.com/albums", "X-Gatehouse-Token", tv)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("family route with the token: %d %s", resp.StatusCode, body)
	}
	noTokenSeen(t, decodeSeen(t, body))
	// The identity is the owner's: identity headers name alice.
	resp, body = appGet(t, app, "https://music.example.com/library", "X-Gatehouse-Token", tv, "X-Forwarded-User", "admin")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("music with the token: %d %s", resp.StatusCode, body)
	}
	seen := decodeSeen(t, body)
	noTokenSeen(t, seen)
	if got := seen.Header.Get("X-Forwarded-User"); got != "alice" {
		t.Errorf("X-Forwarded-User with a device token = %q, want alice", got)
	}
	// The token travels in other spellings and on app routes too, and is
	// removed there as well.
	for _, name := range []string{"x-gatehouse-token", "X_Gatehouse_Token"} {
		resp, body = appGet(t, app, "https://passwords.example.com/", name, tv)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("app route: %d %s", resp.StatusCode, body)
		}
		noTokenSeen(t, decodeSeen(t, body))
	}
	// The group-restricted route takes alice's groups from the token.
	if resp, body := appGet(t, app, "https://request.example.com/", "X-Gatehouse-Token", tv); resp.StatusCode != http.StatusOK {
		t.Errorf("group route with alice's token: %d %s", resp.StatusCode, body)
	}

	// Wrong, malformed and missing tokens.
	for _, bad := range []string{tv[:len(tv)-1] + "A", "ghd_short", "Bearer " + tv, strings.ToUpper(tv)} {
		if bad == tv {
			continue
		}
		resp, body = appGet(t, app, "https://photos.example.com/albums", "X-Gatehouse-Token", bad)
		checkTokenRefused(t, "wrong token "+bad, resp, body)
	}
	resp, body = appGet(t, app, "https://photos.example.com/albums")
	check401(t, "no token", resp, body)

	// The page lists both, by name, never the token.
	_, page := b.get("https://photos.example.com/.gatehouse/devices")
	if !strings.Contains(page, "Mum&#39;s TV") || !strings.Contains(page, "Alice&#39;s phone") || strings.Contains(page, tv) {
		t.Errorf("devices page: %s", page)
	}

	// Changes need the form token and a same-origin POST.
	list, _ := h.si.DeviceTokens().List(nil)
	tvID := ""
	for _, tk := range list {
		if tk.Name == "Mum's TV" {
			tvID = tk.ID
		}
	}
	if !strings.Contains(page, `value="`+tvID+`"`) {
		t.Fatalf("revoke button for %s missing", tvID)
	}
	if resp, _ := b.postDevices(url.Values{"action": {"revoke"}, "id": {tvID}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("revoke without the form token: %d", resp.StatusCode)
	}
	csrf := b.devicesCSRF()
	if resp, _ := b.postDevices(url.Values{"csrf": {csrf}, "action": {"revoke"}, "id": {tvID}},
		"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example.net"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site revoke: %d", resp.StatusCode)
	}
	// Another family member cannot revoke alice's token, even with a form
	// token of their own.
	bob := h.browser()
	bob.signIn("https://photos.example.com/", "bob")
	bob.noRedirects(true)
	// His form is accepted (a redirect back to the page): what keeps the
	// token alive is that it is not his.
	if resp, _ := bob.postDevices(url.Values{"csrf": {bob.devicesCSRF()}, "action": {"revoke"}, "id": {tvID}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("bob's revoke form: %d, want 303", resp.StatusCode)
	}
	bob.noRedirects(false)
	if resp, body := appGet(t, app, "https://photos.example.com/albums", "X-Gatehouse-Token", tv); resp.StatusCode != http.StatusOK {
		t.Errorf("bob revoked alice's token: %d %s", resp.StatusCode, body)
	}
	// Alice's form token does not work in bob's session.
	if resp, _ := bob.postDevices(url.Values{"csrf": {csrf}, "action": {"create"}, "name": {"x"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("another session's form token accepted: %d", resp.StatusCode)
	}

	// The owner revokes the TV on the page: refused at once.
	b.noRedirects(true)
	resp, _ = b.postDevices(url.Values{"csrf": {csrf}, "action": {"revoke"}, "id": {tvID}})
	b.noRedirects(false)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	resp, body = appGet(t, app, "https://photos.example.com/albums", "X-Gatehouse-Token", tv)
	checkTokenRefused(t, "token revoked by its owner", resp, body)
	if resp, body := appGet(t, app, "https://photos.example.com/albums", "X-Gatehouse-Token", phone); resp.StatusCode != http.StatusOK {
		t.Fatalf("the other token after a revocation: %d %s", resp.StatusCode, body)
	}

	// The admin revokes the phone from another process (as `gatehouse
	// tokens revoke` does: its own store on the same file).
	admin, err := devices.Open(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	gone, err := admin.Revoke(func(tk devices.Token) bool { return tk.Email == "alice@example.com" })
	if err != nil || len(gone) != 1 || gone[0].Name != "Alice's phone" {
		t.Fatalf("admin revoke: %v %v", gone, err)
	}
	resp, body = appGet(t, app, "https://photos.example.com/albums", "X-Gatehouse-Token", phone)
	checkTokenRefused(t, "token revoked by the admin", resp, body)
}

// A device token needs no provider: it keeps working while Keycloak is
// down, when browsers get 503.
func TestDeviceTokenWhileProviderDown(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	b := h.browser()
	b.signIn("https://photos.example.com/", "kid")
	tok := b.makeToken("Kid's tablet")

	h.kc.Stop()
	for deadline := time.Now().Add(20 * time.Second); h.si.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("still ready with the provider gone")
		}
	}
	if resp, _ := h.browser().get("https://photos.example.com/"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a new browser, provider down: %d", resp.StatusCode)
	}
	app := h.app()
	resp, body := appGet(t, app, "https://files.example.com/docs", "X-Gatehouse-Token", tok)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("device token, provider down: %d %s", resp.StatusCode, body)
	}
	noTokenSeen(t, decodeSeen(t, body))
	resp, body = appGet(t, app, "https://files.example.com/docs", "X-Gatehouse-Token", "ghd_"+strings.Repeat("A", 43))
	checkTokenRefused(t, "unknown token, provider down", resp, body)
	// Kid is not in /parents: the group route stays closed to the token.
	if resp, body := appGet(t, app, "https://request.example.com/", "X-Gatehouse-Token", tok); resp.StatusCode != http.StatusForbidden ||
		strings.Contains(body, "Sign in as someone else") {
		t.Errorf("group route with kid's token (a device cannot sign in as another): %d %s", resp.StatusCode, body)
	}
}

// Token use is rate-limited per token, and unknown tokens per client
// address: 429 with Retry-After.
func TestDeviceTokenRateLimited(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true, limits: ratelimit.NewRegistry(1000),
		tokenRule:   ratelimit.Rule{Rate: 0.001, Burst: 3},
		failureRule: ratelimit.Rule{Rate: 0.001, Burst: 2}})
	b := h.browser()
	b.signIn("https://photos.example.com/", "alice")
	tok := b.makeToken("TV")
	app := h.app()
	for i := 0; i < 3; i++ {
		if resp, body := appGet(t, app, "https://photos.example.com/", "X-Gatehouse-Token", tok); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := appGet(t, app, "https://photos.example.com/", "X-Gatehouse-Token", tok)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "too_many_requests") {
		t.Errorf("over the token's limit: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// The browser session of the same person is not the token's bucket.
	if resp, _ := b.get("https://photos.example.com/"); resp.StatusCode != http.StatusOK {
		t.Errorf("browser after the token's limit: %d", resp.StatusCode)
	}

	bad := "ghd_" + strings.Repeat("B", 43)
	for i := 0; i < 2; i++ {
		resp, body := appGet(t, app, "https://photos.example.com/", "X-Gatehouse-Token", bad)
		checkTokenRefused(t, "unknown token", resp, body)
	}
	if resp, _ := appGet(t, app, "https://photos.example.com/", "X-Gatehouse-Token", bad); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("unknown tokens over the limit: %d", resp.StatusCode)
	}
}

// Identity headers reach the backend of a route that asks for them, with
// the verified session's values; client-sent copies, and a Connection
// header naming them, change nothing. App paths carry no identity.
func TestFamilyIdentityHeaders(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	b := h.browser()
	if resp, body := b.signIn("https://photos.example.com/", "alice"); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	want := map[string]string{
		"X-Forwarded-User":               "alice",
		"X-Forwarded-Email":              "alice@example.com",
		"X-Forwarded-Groups":             "/family,/parents,offline_access,default-roles-home,family-admin",
		"X-Forwarded-Preferred-Username": "alice",
		"Remote-User":                    "alice",
		"Remote-Email":                   "alice@example.com",
		"Remote-Groups":                  "/family,/parents,offline_access,default-roles-home,family-admin",
		"X-Remote-User":                  "alice",
	}
	spoof := []string{
		"X-Forwarded-User", "admin", "Remote-User", "admin", "X-Forwarded-Groups", "/admins",
		"Remote-Email", "admin@example.com", "X_Forwarded_User", "admin", "X-Remote-User", "admin",
	}
	for _, conn := range []string{"", "X-Forwarded-User, Remote-User, X-Forwarded-Groups, Remote-Groups, X-Forwarded-Email"} {
		hdr := append([]string{}, spoof...)
		if conn != "" {
			hdr = append(hdr, "Connection", conn)
		}
		resp, body := b.get("https://music.example.com/library", hdr...)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("music: %d %s", resp.StatusCode, body)
		}
		seen := decodeSeen(t, body)
		for k, v := range want {
			if got := seen.Header.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("Connection %q: backend %s = %q, want %q", conn, k, got, v)
			}
		}
		if v := seen.Header.Get("X_Forwarded_User"); v != "" {
			t.Errorf("client-sent X_Forwarded_User reached the backend: %q", v)
		}
	}
	// A family route that does not ask for them gets none (only the
	// scrubbed client copies, which are gone).
	_, body := b.get("https://photos.example.com/", spoof...)
	checkBackendHeaders(t, decodeSeen(t, body))
	// An app path of the music route: no identity, no client copies.
	_, body = b.get("https://music.example.com/rest/ping", spoof...)
	seen := decodeSeen(t, body)
	for k := range want {
		if v := seen.Header.Get(k); v != "" {
			t.Errorf("app path: backend %s = %q", k, v)
		}
	}
}
