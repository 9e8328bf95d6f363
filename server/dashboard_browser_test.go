package server

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gatehouse/browsertest"
	"gatehouse/devices"
	"gatehouse/tailnet/tailnettest"
)

// browser is a headless Debian chromium with its own profile; every name
// in resolve maps to loopback (--host-resolver-rules), where a forwarder
// carries the connection across the tailnet from a peer's node.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T, resolve string) *browser {
	t.Helper()
	ctx := browsertest.Start(t, 2*time.Minute, chromedp.Flag("host-resolver-rules", "MAP "+resolve+" 127.0.0.1"))
	return &browser{t: t, ctx: ctx}
}

// text is the page's visible text once it shows want (or the hang guard ends).
func (b *browser) text(want string) string {
	b.t.Helper()
	for {
		body, err := browsertest.PageText(b.ctx)
		if err == nil && strings.Contains(body, want) {
			return body
		}
		if b.ctx.Err() != nil {
			b.t.Fatalf("page never showed %q; it shows: %s", want, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// click clicks sel and waits for the next page to show want.
func (b *browser) click(sel, want string) string {
	b.t.Helper()
	if err := browsertest.MarkPage(b.ctx); err != nil {
		b.t.Fatal(err)
	}
	if err := chromedp.Do(b.ctx, chromedp.Click(sel)); err != nil {
		b.t.Fatalf("click %s: %v", sel, err)
	}
	return b.text(want)
}

// screenshot writes the page as a PNG under dir and checks it is a real,
// non-empty image.
func (b *browser) screenshot(dir, name string) {
	b.t.Helper()
	img, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(img))
	if err != nil || cfg.Width == 0 || cfg.Height == 0 {
		b.t.Fatalf("screenshot %s is no image: %v (%d bytes)", name, err, len(img))
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		b.t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		b.t.Fatalf("screenshot %s is empty: %v", path, err)
	}
}

// TestBrowserDashboard: Chromium opens the admin dashboard on the shared
// node's own name across a testcontrol tailnet. The admin sees the down
// backend, the member's refusal and ban, and a device token; unbans and
// revokes with the page's buttons, and the member gets in again. The
// member's own browser is refused; the Cloudflare door answers the
// dashboard's name with the unknown-host 404.
func TestBrowserDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tailnet nodes")
	}
	if _, err := exec.LookPath("chromium"); err != nil {
		t.Skip("chromium not installed (apt-get install chromium)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	shots := t.TempDir()

	// A tailnet without HTTPS certificates: the shared node answers plain
	// HTTP on :80, which the forwarders carry.
	controlURL := startControlWith(t, "").HTTPTestServer.URL
	issuer := newCertIssuer(t)
	alice := startPeer(t, ctx, controlURL, "alice-laptop", nil, issuer.pool())
	bob := startPeer(t, ctx, controlURL, "bob-phone", nil, issuer.pool())

	wiki := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			http.Error(w, "wrong password", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "the wiki")
	}))
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	goneAddr := gone.Addr().String()
	gone.Close() // the photos backend does not answer

	dir := t.TempDir()
	keyFile := filepath.Join(dir, "authkey")
	writeFile(t, keyFile, "tskey-test\n")
	writeFile(t, filepath.Join(dir, "secret"), "s3cret\n")
	config := filepath.Join(dir, "routes.hcl")
	writeFile(t, config, tailnetConfig(controlURL, filepath.Join(dir, "state"), keyFile, []string{alice.login}, fmt.Sprintf(`
oidc {
  issuer             = "https://127.0.0.1:1/realms/home"
  client_id          = "gatehouse"
  client_secret_file = "secret"
  cookie_key_file    = "oidc/cookie.keys"
}
route "wiki" {
  backend     = %q
  description = "The family wiki"
  tailnet {
    access = "members"
    node   = false
  }
  path "/login" {
    ban {
      failures = 2
      window   = "1m"
      ban_time = "1h"
      statuses = [401]
    }
  }
}
route "photos" {
  backend = "http://%s"
  preset  = "immich"
  tailnet {
    access = "admin"
    node   = false
  }
  cloudflare {
    host   = "photos"
    access = "family"
  }
  health {
    interval = "200ms"
  }
}
`, wiki, goneAddr)))
	g := startTailnetGateway(t, config, issuer)

	// A device token of a family member, as the devices page makes them.
	store, err := devices.Open(filepath.Join(dir, "oidc", "devices.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Create("Living room TV", devices.Owner{Subject: "sub-kid", Email: "kid@example.com"}); err != nil {
		t.Fatal(err)
	}

	shared := tailnettest.AddrOf(t, ctx, alice.s, "gatehouse") + ":80"
	ask := func(p *peer, host, path string) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+shared+path, nil)
		req.Host = host
		resp, err := p.http.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", host, path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	bob.get(t, "http://"+shared+"/") // the tailnet has settled
	// Bob is refused the admin route and bans himself on the wiki's login.
	if code := ask(bob, "photos", "/"); code != http.StatusForbidden {
		t.Fatalf("bob on the admin route: %d, want 403", code)
	}
	for range 2 {
		ask(bob, "wiki", "/login")
	}
	if code := ask(bob, "wiki", "/"); code != http.StatusTooManyRequests {
		t.Fatalf("bob after two failed logins: %d, want 429 (banned)", code)
	}

	viaAlice := forwardLoopback(t, func(ctx context.Context) (net.Conn, error) { return alice.s.Dial(ctx, "tcp", shared) })
	viaBob := forwardLoopback(t, func(ctx context.Context) (net.Conn, error) { return bob.s.Dial(ctx, "tcp", shared) })
	_, alicePort, _ := net.SplitHostPort(viaAlice)
	_, bobPort, _ := net.SplitHostPort(viaBob)

	t.Run("admin", func(t *testing.T) {
		b := newBrowser(t, "gatehouse."+magicDNSLess)
		base := "http://gatehouse." + magicDNSLess + ":" + alicePort + "/"
		if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(base)); err != nil {
			t.Fatal(err)
		}
		page := b.text("Not answering")
		for _, want := range []string{alice.login, "photos", "down since", "connection refused", "The family wiki", "immich",
			bob.login, "403 forbidden", "429 banned", "Living room TV", "kid@example.com", "gatehouse (shared)"} {
			if !strings.Contains(page, want) {
				t.Errorf("dashboard lacks %q", want)
			}
		}
		b.screenshot(shots, "dashboard")
		// On a phone, too: the page fits without a framework.
		if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(390, 844)); err != nil {
			t.Fatal(err)
		}
		b.screenshot(shots, "dashboard-phone")
		if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
			t.Fatal(err)
		}

		page = b.click(`//tr[@class="ban"]//button[text()="Unban"]`, "Unbanned")
		if !strings.Contains(page, "Nobody is banned") {
			t.Errorf("after unban the page still lists a ban: %s", page)
		}
		if code := ask(bob, "wiki", "/"); code != http.StatusOK {
			t.Errorf("bob after the unban: %d, want 200", code)
		}
		page = b.click(`//tr[@class="device"]//button[text()="Revoke"]`, "Revoked Living room TV")
		if !strings.Contains(page, "No device tokens") {
			t.Errorf("after revoke the page still lists a token: %s", page)
		}
		if left, err := store.List(func(devices.Token) bool { return true }); err != nil || len(left) != 0 {
			t.Errorf("tokens left after the revoke: %v %v", left, err)
		}
		b.screenshot(shots, "dashboard-after-actions")
	})

	t.Run("member refused", func(t *testing.T) {
		b := newBrowser(t, "gatehouse."+magicDNSLess)
		if err := chromedp.Do(b.ctx, chromedp.Navigate("http://gatehouse."+magicDNSLess+":"+bobPort+"/")); err != nil {
			t.Fatal(err)
		}
		page := b.text("Not allowed")
		if !strings.Contains(page, bob.login) || strings.Contains(page, "Living room") {
			t.Errorf("member's page: %s", page)
		}
		b.screenshot(shots, "dashboard-refused")
	})

	t.Run("not through cloudflare", func(t *testing.T) {
		_, unknown := get(t, http.DefaultClient, g.addr, "nothing.example.com", "/")
		for _, host := range []string{"gatehouse", "gatehouse.example.com", "gatehouse." + magicDNS} {
			if code, body := get(t, http.DefaultClient, g.addr, host, "/"); code != http.StatusNotFound || body != unknown {
				t.Errorf("dashboard name %s on the Cloudflare door: %d, want the unknown-host 404", host, code)
			}
		}
	})
}

// magicDNSLess is a name for the shared node in a tailnet without
// MagicDNS names of its own: the dashboard goes by the first label.
const magicDNSLess = "tailnet.test"
