package signin

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// screenshot writes the page on show as a PNG under dir and checks it is
// a real, non-empty image.
func screenshot(t *testing.T, c *chrome, dir, name string) {
	t.Helper()
	img, err := chromedp.Run(c.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(img))
	if err != nil || cfg.Width == 0 || cfg.Height == 0 {
		t.Fatalf("screenshot %s is no image: %v (%d bytes)", name, err, len(img))
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("screenshot %s empty: %v", path, err)
	}
}

// TestBrowserFamilyPortal: in Chromium, on a phone-sized screen, a member
// opens the portal, signs in on the provider's page, lands on their own
// services (no route of a group they are not in), and follows a link to one.
func TestBrowserFamilyPortal(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	c := newChrome(t, h)
	shots := t.TempDir()
	err := chromedp.Do(c.ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(c.base+portalPath))
	if err == nil {
		err = c.signInAt("kid")
	}
	var page string
	if err == nil {
		page, err = c.waitAny("Signed in as", "Not allowed")
	}
	if err != nil || !strings.Contains(page, "kid@example.com") {
		t.Fatalf("portal after sign-in: %v (at %s): %s", err, c.loc(), page)
	}
	if c.loc() != c.base+portalPath {
		t.Errorf("portal at %s", c.loc())
	}
	names, err := chromedp.Run(c.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("li.service b")].map(e => e.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, ","); got != "files,music,passwords,photos" {
		t.Errorf("kid's services %q, want files,music,passwords,photos (not request, /parents only)", got)
	}
	screenshot(t, c, shots, "portal")
	// The photos link goes to the service; its page answers as the member.
	if err = c.markPage(); err == nil {
		err = chromedp.Do(c.ctx, chromedp.Click(`//li[@class="service"]//b[text()="photos"]`))
	}
	if err == nil {
		page, err = c.waitAny(`"route":"photos"`, "Not allowed")
	}
	if err != nil || !strings.Contains(page, `"route":"photos"`) {
		t.Errorf("following the photos link: %v (at %s): %s", err, c.loc(), page)
	}
}
