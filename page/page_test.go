package page

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestWrite: every page carries the same security headers, and the CSP
// allows the page's own style block and nothing that could run.
func TestWrite(t *testing.T) {
	body := Render(http.StatusForbidden, "Not <allowed>", "You may <b>not</b>.")
	rec := httptest.NewRecorder()
	rec.Header().Set("Retry-After", "30") // a caller's own header stays
	Write(rec, http.StatusForbidden, body)
	if rec.Code != http.StatusForbidden || rec.Body.String() != string(body) {
		t.Fatalf("answer %d %q", rec.Code, rec.Body)
	}
	want := map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Content-Length":         strconv.Itoa(len(body)),
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "same-origin",
		"Retry-After":            "30",
	}
	for k, v := range want {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	policy := rec.Header().Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "img-src data:"} {
		if !strings.Contains(policy, d) {
			t.Errorf("CSP %q lacks %q", policy, d)
		}
	}
	if strings.Contains(policy, "unsafe-inline") || strings.Contains(policy, "script-src") {
		t.Errorf("CSP %q lets something run", policy)
	}
	// The hash is of the style block the page really has.
	m := regexp.MustCompile(`<style>(.*?)</style>`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no style block in %q", body)
	}
	sum := sha256.Sum256(m[1])
	if h := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(policy, h) {
		t.Errorf("CSP %q does not allow the page's style (%s)", policy, h)
	}
	if !strings.Contains(string(body), "<title>403 Not &lt;allowed&gt;</title>") || !strings.Contains(string(body), "<b>not</b>") {
		t.Errorf("title not escaped or body escaped: %q", body)
	}
}
