package server

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestPortalHost: oidc.portal_host sends every path to the family portal,
// whose endpoint sign-in answers there (503 while the provider is down,
// never the unknown-host 404); a host outside the table still gets the 404.
func TestPortalHost(t *testing.T) {
	dir := t.TempDir()
	backend := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	writeFile(t, filepath.Join(dir, "secret"), "s3cret\n")
	config := filepath.Join(dir, "routes.hcl")
	writeFile(t, config, tableSource(`
oidc {
  issuer             = "https://127.0.0.1:1/realms/home"
  client_id          = "gatehouse"
  client_secret_file = "secret"
  cookie_key_file    = "state/cookie.keys"
  portal_host        = "home.example.com"
}
route "photos" {
  backend = "`+backend+`"
  cloudflare {
    host   = "photos"
    access = "family"
  }
}
`))
	g := startServer(t, config, Options{})
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", "http://"+g.addr+"/albums", nil)
	req.Host = "home.example.com"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/.gatehouse/" {
		t.Errorf("portal host /albums: %d %q, want 302 to /.gatehouse/", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, body := get(t, c, g.addr, "home.example.com", "/.gatehouse/"); code != http.StatusServiceUnavailable || !strings.Contains(body, "try again shortly") {
		t.Errorf("portal with the provider down: %d %s", code, body)
	}
	_, unknown := get(t, c, g.addr, "nothing.example.com", "/")
	if code, body := get(t, c, g.addr, "nothing.example.com", "/.gatehouse/"); code != http.StatusNotFound || body != unknown {
		t.Errorf("portal path on an unknown host: %d %s", code, body)
	}
}
