package signin

// A real browser: Debian's chromium, headless, driven with chromedp. It
// opens a family URL (the test hosts map to loopback with
// --host-resolver-rules), signs in on the provider's own login page, lands
// on the backend, then signs out through the button on
// /.gatehouse/logout. Skipped where chromium is not installed (.ci/run
// installs it).

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestBrowserSignInAndOut(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (apt-get install chromium)")
	}
	h := newHarness(t, harnessOpts{startOP: true})
	_, port, _ := net.SplitHostPort(h.door.Listener.Addr().String())
	base := "https://photos.example.com:" + port

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("host-resolver-rules", "MAP *.example.com 127.0.0.1"),
		// The test's certificates are its own.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// A hang guard, not a timing assertion.
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	loc := func() string {
		u, _ := chromedp.Run(ctx, chromedp.Location())
		return u
	}
	// waitText waits until the page shows text, across the navigations a
	// sign-in makes (a poll inside one page would be cut by them).
	waitText := func(text string) error {
		for {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.body && document.body.innerText.includes(`+strconv.Quote(text)+`)`))
			if err == nil && ok {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/albums/7?view=grid"),
		chromedp.WaitVisible(chromedp.ID("username")),
	)
	if err != nil {
		t.Fatalf("opening a family URL: %v (at %s)", err, loc())
	}
	if loginURL := loc(); !strings.HasPrefix(loginURL, h.kc.issuer+"/login") {
		t.Errorf("login page at %s, want the provider's", loginURL)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "pw-alice"),
		chromedp.Click(chromedp.ID("kc-login")),
	)
	if err == nil {
		err = waitText(`"route":"photos"`)
	}
	if err != nil {
		t.Fatalf("signing in on the provider's page: %v (at %s)", err, loc())
	}
	if landed := loc(); landed != base+"/albums/7?view=grid" {
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

	// Sign out with the button.
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/.gatehouse/logout"),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
	)
	if err == nil {
		err = waitText("You are signed out")
	}
	if err != nil {
		t.Fatalf("signing out in the browser: %v (at %s)", err, loc())
	}
	if signedOut := loc(); signedOut != base+"/.gatehouse/signed-out" {
		t.Errorf("signed out at %s", signedOut)
	}
	h.kc.mu.Lock()
	ends := h.kc.endSessions
	h.kc.mu.Unlock()
	if len(ends) != 1 || ends[0].Get("id_token_hint") == "" {
		t.Errorf("end_session calls: %v", ends)
	}
	// Signed out: the family URL asks for a sign-in again.
	err = chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("username")))
	if again := loc(); err != nil || !strings.HasPrefix(again, h.kc.issuer+"/login") {
		t.Errorf("after sign-out: %v at %s", err, again)
	}
}
