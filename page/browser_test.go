package page

// The pages in a real browser (Debian's chromium, headless, chromedp; the
// pattern of signin/browser_test.go): the CSP lets the page's style and an
// inline image through, and nothing else — no script, no inline style
// attribute, no image from a URL — and no other page can frame a page.
// Skipped where chromium is not installed (.ci/run installs it).

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gatehouse/browsertest"
)

// onePixel is a 1×1 PNG, as sign-in's QR codes are inline PNGs.
const onePixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

func TestBrowserPageSecurity(t *testing.T) {
	ctx := browsertest.Start(t, 60*time.Second)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page":
			// A body that would run script and load from elsewhere if the
			// policy let it: an escaping slip must not become an attack.
			Write(w, http.StatusOK, Render(http.StatusOK, "Devices",
				`<img id="qr" alt="qr" src="data:image/png;base64,`+onePixel+`">`+
					`<img id="remote" alt="remote" src="/pixel.png">`+
					`<script>document.title = "script ran"</script>`+
					`<span id="styled" style="color: rgb(255, 0, 0)">x</span>`))
		case "/pixel.png":
			png, _ := base64.StdEncoding.DecodeString(onePixel)
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(png)
		case "/framer":
			// Another page embedding ours.
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte(`<!doctype html><iframe id="f" src="/page"></iframe>`))
		}
	}))
	defer srv.Close()

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/page"), chromedp.WaitReady(chromedp.ID("qr"))); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	title := eval(`document.title`)
	maxWidth := eval(`getComputedStyle(document.body).maxWidth`)
	spanColor := eval(`getComputedStyle(document.getElementById("styled")).color`)
	// Images settle (load or fail) before their width is read.
	qrWidth := eval(`new Promise(r => { const i = document.getElementById("qr"); i.complete ? r(String(i.naturalWidth)) : i.onload = i.onerror = () => r(String(i.naturalWidth)) })`)
	remoteWidth := eval(`new Promise(r => { const i = document.getElementById("remote"); i.complete ? r(String(i.naturalWidth)) : i.onload = i.onerror = () => r(String(i.naturalWidth)) })`)
	if title != "200 Devices" {
		t.Errorf("title %q: an inline script ran", title)
	}
	if maxWidth != "576px" {
		t.Errorf("body max-width %q, want 576px (36em): the page's style was blocked", maxWidth)
	}
	if spanColor == "rgb(255, 0, 0)" {
		t.Error("an inline style attribute applied")
	}
	if qrWidth != "1" {
		t.Errorf("the inline image did not load (width %s)", qrWidth)
	}
	if remoteWidth != "0" {
		t.Errorf("an image from a URL loaded (width %s): only inline ones may", remoteWidth)
	}

	// Framed, the page does not render: the frame's document stays empty
	// (Chromium shows its own error page, which the framer cannot read).
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/framer"), chromedp.WaitReady(chromedp.ID("f"))); err != nil {
		t.Fatalf("loading the framing page: %v", err)
	}
	// Window load waits for the frame to load, or to be refused.
	framed := eval(`new Promise(r => {
		const check = () => {
			try {
				const d = document.getElementById("f").contentDocument
				r(String(!!d && !!d.getElementById("qr")))
			} catch (e) { r("false") }
		}
		document.readyState === "complete" ? check() : window.addEventListener("load", check)
	})`) == "true"
	if framed {
		t.Error("the page rendered inside another page's frame")
	}
}
