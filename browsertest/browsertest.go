// Package browsertest starts the browser tests' Chromium: Debian's
// chromium, headless, with a fresh profile and the flags this machine's
// closed network needs (no background networking, no component updates,
// no sync), so that it dials nothing but what a test points it at.
package browsertest

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Start returns a chromedp context on a new headless Chromium, or skips the
// test where chromium is not installed (.ci/run installs it). extra adds
// flags such as host-resolver-rules. The browser ends with the test, and
// the context within hangGuard, a guard against hanging and never a timing
// assertion.
func Start(t testing.TB, hangGuard time.Duration, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (apt-get install chromium)")
	}
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}, extra...)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, hangGuard)
	t.Cleanup(cancel)
	return ctx
}

// MarkPage marks the page now shown, so PageText ignores it until a
// navigation replaces it (a click's next page may take a moment).
func MarkPage(ctx context.Context) error {
	_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.gatehouseTestOld = true`))
	return err
}

// PageText is the visible text of the page shown, once it has loaded
// whole; "" while it is still loading or is the page MarkPage marked. A
// page read while it streams in shows its top and lacks its end.
func PageText(ctx context.Context) (string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[string](`document.body && document.readyState === "complete" && !window.gatehouseTestOld ? document.body.innerText : ""`))
}
