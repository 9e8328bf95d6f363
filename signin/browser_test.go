package signin

// A real browser: Debian's chromium, headless, driven with chromedp. It
// opens a family URL (the test hosts map to loopback with
// --host-resolver-rules), signs in on the provider's own login page, lands
// on the backend, then signs out through the button on
// /.gatehouse/logout; and it pairs an app on /.gatehouse/devices with the
// page's own buttons. Skipped where chromium is not installed (.ci/run
// installs it).

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gatehouse/browsertest"
	"gatehouse/routes"
)

// chrome is one headless chromium with its own profile, on the harness's
// door.
type chrome struct {
	t    *testing.T
	ctx  context.Context
	base string // https://photos.example.com:<door port>
	port string
}

func newChrome(t *testing.T, h *harness) *chrome {
	t.Helper()
	_, port, _ := net.SplitHostPort(h.door.Listener.Addr().String())
	ctx := browsertest.Start(t, 90*time.Second,
		chromedp.Flag("host-resolver-rules", "MAP *.example.com 127.0.0.1"),
		// The test's certificates are its own.
		chromedp.Flag("ignore-certificate-errors", true),
	)
	return &chrome{t: t, ctx: ctx, base: "https://photos.example.com:" + port, port: port}
}

func (c *chrome) loc() string {
	u, _ := chromedp.Run(c.ctx, chromedp.Location())
	return u
}

// waitText waits until the page shows text, across the navigations a
// sign-in makes (a poll inside one page would be cut by them).
func (c *chrome) waitText(text string) error {
	_, err := c.waitAny(text)
	return err
}

// markPage marks the page on show, so waitAny waits for the next one (a
// click that navigates would otherwise race the old page's text).
func (c *chrome) markPage() error {
	return browsertest.MarkPage(c.ctx)
}

// waitAny waits until a page not marked by markPage shows one of texts and
// returns the page's text, so a test can tell the expected page from a
// refusal at once.
func (c *chrome) waitAny(texts ...string) (string, error) {
	for {
		body, err := browsertest.PageText(c.ctx)
		if err == nil {
			for _, text := range texts {
				if strings.Contains(body, text) {
					return body, nil
				}
			}
		}
		if c.ctx.Err() != nil {
			return "", c.ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signInAt fills in the provider's login form, which the browser is on.
func (c *chrome) signInAt(user string) error {
	return chromedp.Do(c.ctx,
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), "pw-"+user),
		chromedp.Click(chromedp.ID("kc-login")),
	)
}

func TestBrowserSignInAndOut(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	c := newChrome(t, h)
	ctx, base := c.ctx, c.base

	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/albums/7?view=grid"),
		chromedp.WaitVisible(chromedp.ID("username")),
	)
	if err != nil {
		t.Fatalf("opening a family URL: %v (at %s)", err, c.loc())
	}
	if loginURL := c.loc(); !strings.HasPrefix(loginURL, h.kc.Issuer+"/login") {
		t.Errorf("login page at %s, want the provider's", loginURL)
	}
	err = c.signInAt("alice")
	if err == nil {
		err = c.waitText(`"route":"photos"`)
	}
	if err != nil {
		t.Fatalf("signing in on the provider's page: %v (at %s)", err, c.loc())
	}
	if landed := c.loc(); landed != base+"/albums/7?view=grid" {
		t.Errorf("landed on %s", landed)
	}
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	checkBackendHeaders(t, decodeSeen(t, body))
	cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil || strings.Contains(cookies, "gatehouse") {
		t.Errorf("page script can read the gateway cookie: %q %v", cookies, err)
	}

	// gatehouse restarts and forgets the tokens; the session falls due.
	// Chromium's next page goes through /.gatehouse/renew, which only the
	// path-scoped tokens cookie makes work, and comes back.
	_, refreshes := h.kc.Counts()
	h.restart()
	h.clock.Advance(6 * time.Minute)
	if err = chromedp.Do(ctx, chromedp.Navigate(base+"/albums/8?view=list")); err == nil {
		err = c.waitText(`"path":"/albums/8"`)
	}
	if err != nil {
		t.Fatalf("a page due for renewal after a restart: %v (at %s)", err, c.loc())
	}
	if landed := c.loc(); landed != base+"/albums/8?view=list" {
		t.Errorf("back from renew at %s", landed)
	}
	if _, r := h.kc.Counts(); r != refreshes+1 {
		t.Errorf("%d renewals through /.gatehouse/renew, want 1", r-refreshes)
	}
	// Restarted once more, gatehouse has no ID token in memory: logout's
	// id_token_hint below comes from the tokens cookie Chromium sends.
	h.restart()

	// Sign out with the button.
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/.gatehouse/logout"),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
	)
	if err == nil {
		err = c.waitText("You are signed out")
	}
	if err != nil {
		t.Fatalf("signing out in the browser: %v (at %s)", err, c.loc())
	}
	if signedOut := c.loc(); signedOut != base+"/.gatehouse/signed-out" {
		t.Errorf("signed out at %s", signedOut)
	}
	h.kc.Mu.Lock()
	ends := h.kc.EndSessions
	h.kc.Mu.Unlock()
	if len(ends) != 1 || ends[0].Get("id_token_hint") == "" {
		t.Errorf("end_session calls: %v", ends)
	}
	// Signed out: the family URL asks for a sign-in again.
	err = chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("username")))
	if again := c.loc(); err != nil || !strings.HasPrefix(again, h.kc.Issuer+"/login") {
		t.Errorf("after sign-out: %v at %s", err, again)
	}
}

// Pairing an app in the browser, with the page's own buttons: make a
// token, see it with its QR code, use it from an app, revoke it. The
// page's form POSTs are what Chromium really sends (fetch metadata, and
// the Origin its referrer policy allows), not headers a test sets.
func TestBrowserDevicePairing(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	c := newChrome(t, h)
	ctx := c.ctx

	err := chromedp.Do(ctx, chromedp.Navigate(c.base+devicesPath))
	if err == nil {
		err = c.signInAt("alice")
	}
	if err == nil {
		err = chromedp.Do(ctx, chromedp.WaitVisible(`//button[text()="Make a token"]`))
	}
	if err != nil {
		t.Fatalf("opening the devices page: %v (at %s)", err, c.loc())
	}
	err = c.markPage()
	if err == nil {
		err = chromedp.Do(ctx,
			chromedp.SendKeys(`input[name="name"]`, "Living room TV"),
			chromedp.Click(`//button[text()="Make a token"]`),
		)
	}
	var page string
	if err == nil {
		page, err = c.waitAny("Copy it now", "Not changed")
	}
	if err != nil || !strings.Contains(page, "Copy it now") {
		t.Fatalf("making a token in the browser: %v (at %s): %s", err, c.loc(), page)
	}
	token, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("token")))
	if err != nil || !strings.HasPrefix(token, "ghd_") {
		t.Fatalf("token shown: %q %v", token, err)
	}
	// The QR code is an image the browser could decode, at its size.
	qr, err := chromedp.Run(ctx, chromedp.Evaluate[int](`(() => { const i = document.querySelector('img[alt="QR code of the token"]'); return i && i.complete ? i.naturalWidth : 0 })()`))
	if err != nil || qr != 256 {
		t.Errorf("QR code image: width %d %v", qr, err)
	}

	// Bound to alice's account: the provider gave an offline token on the
	// way (silently, her session there lasting).
	if n := h.kc.OfflineTokens("alice"); n != 1 {
		t.Errorf("alice's offline tokens at the provider: %d, want 1", n)
	}
	app := h.app()
	resp, body := appGet(t, app, "https://photos.example.com/albums", "X-Gatehouse-Token", token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the app with the token made in the browser: %d %s", resp.StatusCode, body)
	}
	if got := decodeSeen(t, body); got.Route != "photos" {
		t.Errorf("backend saw %+v", got)
	}

	// Revoke it with its button: the list empties, the app is refused.
	err = chromedp.Do(ctx,
		chromedp.Navigate(c.base+devicesPath),
		chromedp.WaitVisible(`//td[text()="Living room TV"]`),
	)
	if err == nil {
		err = c.markPage()
	}
	if err == nil {
		err = chromedp.Do(ctx, chromedp.Click(`//button[text()="Revoke"]`))
	}
	if err == nil {
		page, err = c.waitAny("You have no device tokens", "Not changed")
	}
	if err != nil || !strings.Contains(page, "You have no device tokens") {
		t.Fatalf("revoking in the browser: %v (at %s): %s", err, c.loc(), page)
	}
	resp, body = appGet(t, app, "https://photos.example.com/albums", "X-Gatehouse-Token", token)
	checkTokenRefused(t, "token revoked in the browser", resp, body)
	if n := h.kc.OfflineTokens("alice"); n != 0 {
		t.Errorf("offline tokens left at the provider after the last device went: %d", n)
	}
}

// Signed in with the wrong account, a family member is not stuck: the 403
// page's "Sign in as someone else" ends the session here and at the
// provider (whose SSO session would otherwise sign the same account in
// again at once) and starts a fresh sign-in with prompt=login, back to
// the page they wanted.
func TestBrowserSignInAsSomeoneElse(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	c := newChrome(t, h)
	ctx := c.ctx
	want := "https://request.example.com:" + c.port + "/movies/12?sort=new"

	err := chromedp.Do(ctx, chromedp.Navigate(want))
	if err == nil {
		err = c.signInAt("kid")
	}
	var page string
	if err == nil {
		page, err = c.waitAny("Not allowed", `"route"`)
	}
	if err != nil || !strings.Contains(page, "kid@example.com") || !strings.Contains(page, "Sign in as someone else") {
		t.Fatalf("the kid on the /parents route, want a 403 offering another account: %v (at %s): %s", err, c.loc(), page)
	}
	err = c.markPage()
	if err == nil {
		err = chromedp.Do(ctx, chromedp.Click(`//button[text()="Sign in as someone else"]`))
	}
	if err == nil {
		page, err = c.waitAny("Sign In", "Not allowed", `"route"`)
	}
	if err != nil || !strings.HasPrefix(c.loc(), h.kc.Issuer+"/login") {
		t.Fatalf("after \"sign in as someone else\": %v, at %s, not the provider's login form: %s", err, c.loc(), page)
	}
	h.kc.Mu.Lock()
	prompt, ends, sso := h.kc.LastAuthorize.Get("prompt"), len(h.kc.EndSessions), h.kc.SSOLogins
	h.kc.Mu.Unlock()
	if prompt != "login" || ends != 1 || sso != 0 {
		t.Errorf("the new sign-in: prompt %q, %d end_session calls, %d SSO sign-ins", prompt, ends, sso)
	}
	if err = c.markPage(); err == nil {
		err = c.signInAt("alice")
	}
	if err == nil {
		page, err = c.waitAny(`"route":"request"`, "Not allowed")
	}
	if err != nil || c.loc() != want {
		t.Fatalf("signed in as alice: %v, at %s: %s", err, c.loc(), page)
	}
	// The request was used up: the signed-out page is just that again.
	err = chromedp.Do(ctx, chromedp.Navigate(c.base+signedOutPath))
	if err == nil {
		page, err = c.waitAny("You are signed out", "Sign In")
	}
	if err != nil || !strings.Contains(page, "You are signed out") {
		t.Errorf("signed-out page afterwards: %v at %s: %s", err, c.loc(), page)
	}
}

// One sign-in at home and away, in a real browser. The LAN door is the
// same host on another port (cookies are not port-scoped): signed in
// through the Cloudflare door, the same name on the LAN door lands on the
// backend with no second visit to the provider, and the reverse, signed
// in at home first. Counting the provider's authorizations is what tells
// the cookie apart from the provider's own SSO session, which would also
// land the browser on the backend, by way of the provider.
func TestBrowserOneSignInAtHomeAndAway(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	var atHome atomic.Int64 // requests the LAN door answered
	lanDoor := h.gw.Door(routes.LAN)
	lan := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		atHome.Add(1)
		lanDoor.ServeHTTP(w, r)
	}))
	lan.StartTLS()
	t.Cleanup(lan.Close)
	_, lanPort, _ := net.SplitHostPort(lan.Listener.Addr().String())
	home := "https://photos.example.com:" + lanPort
	const path = "/albums/7?view=grid"

	for _, tc := range []struct {
		name, user   string
		signInAtHome bool
	}{
		{"away then home", "alice", false},
		{"home then away", "kid", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newChrome(t, h)
			first, then := c.base, home
			if tc.signInAtHome {
				first, then = home, c.base
			}
			homeBefore := atHome.Load()
			err := chromedp.Do(c.ctx, chromedp.Navigate(first+path))
			if err == nil {
				err = c.signInAt(tc.user)
			}
			if err == nil {
				err = c.waitText(`"route":"photos"`)
			}
			if err != nil || c.loc() != first+path {
				t.Fatalf("signing in at %s: %v (at %s)", first, err, c.loc())
			}
			if tc.signInAtHome != (atHome.Load() > homeBefore) {
				t.Fatalf("the sign-in at %s went through the LAN door %d times", first, atHome.Load()-homeBefore)
			}

			authorizations, _ := h.kc.Counts()
			homeBefore = atHome.Load()
			err = c.markPage()
			if err == nil {
				err = chromedp.Do(c.ctx, chromedp.Navigate(then+path))
			}
			var page string
			if err == nil {
				page, err = c.waitAny(`"route":"photos"`, "Sign In", "Not allowed")
			}
			if err != nil || !strings.Contains(page, `"route":"photos"`) || c.loc() != then+path {
				t.Fatalf("the same browser at %s: %v (at %s): %s", then, err, c.loc(), page)
			}
			if after, _ := h.kc.Counts(); after != authorizations {
				t.Errorf("%s sent the browser to the provider again (%d → %d authorizations)", then, authorizations, after)
			}
			if !tc.signInAtHome && atHome.Load() == homeBefore {
				t.Errorf("the page at %s did not come through the LAN door", then)
			}
		})
	}
}
