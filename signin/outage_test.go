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
