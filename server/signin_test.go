package server

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serve wires family sign-in from the oidc block: with the provider
// unreachable, startup is not held up, family routes answer 503 "sign-in
// unavailable" and app routes work; the cookie key file is made; a reload
// without the block turns sign-in off (still failing closed).
func TestServeWiresFamilySignIn(t *testing.T) {
	dir := t.TempDir()
	backend := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("backend " + r.Host))
	}))
	writeFile(t, filepath.Join(dir, "secret"), "s3cret\n")
	oidc := `
oidc {
  issuer             = "https://127.0.0.1:1/realms/home"
  client_id          = "gatehouse"
  client_secret_file = "secret"
  cookie_key_file    = "state/cookie.keys"
}
`
	family := `
route "photos" {
  backend = "` + backend + `"
  cloudflare {
    host   = "photos"
    access = "family"
  }
}
`
	config := filepath.Join(dir, "routes.hcl")
	writeFile(t, config, tableSource(oidc+family+appRoute("passwords", backend)))
	g := startServer(t, config, Options{})
	c := &http.Client{}

	if code, body := get(t, c, g.addr, "passwords.example.com", "/"); code != http.StatusOK || !strings.Contains(body, "backend") {
		t.Errorf("app route with the provider down: %d %s", code, body)
	}
	if code, body := get(t, c, g.addr, "photos.example.com", "/"); code != http.StatusServiceUnavailable {
		t.Errorf("family route with the provider down: %d %s", code, body)
	}
	// /.gatehouse/ is answered by sign-in itself: it is installed.
	code, body := get(t, c, g.addr, "photos.example.com", "/.gatehouse/login")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "try again shortly") {
		t.Errorf("sign-in endpoint: %d %s", code, body)
	}
	fi, err := os.Stat(filepath.Join(dir, "state", "cookie.keys"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cookie key file: %v %v", fi, err)
	}

	// Reload without the oidc block: sign-in is off, family routes still
	// fail closed.
	writeFile(t, config, tableSource(family+appRoute("passwords", backend)))
	if err := g.waitReload(t); err != nil {
		t.Fatal(err)
	}
	code, body = get(t, c, g.addr, "photos.example.com", "/.gatehouse/login")
	if code != http.StatusServiceUnavailable || strings.Contains(body, "try again shortly") {
		t.Errorf("after removing oidc: %d %s", code, body)
	}
	if code, _ := get(t, c, g.addr, "passwords.example.com", "/"); code != http.StatusOK {
		t.Errorf("app route after reload: %d", code)
	}
}

// A sign-in that cannot be built (the secret file is missing) leaves
// family routes failing closed and everything else serving.
func TestServeWithoutClientSecretFailsClosed(t *testing.T) {
	dir := t.TempDir()
	backend := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	config := filepath.Join(dir, "routes.hcl")
	writeFile(t, config, tableSource(`
oidc {
  issuer             = "https://127.0.0.1:1/realms/home"
  client_id          = "gatehouse"
  client_secret_file = "missing"
}
route "photos" {
  backend = "`+backend+`"
  cloudflare {
    host   = "photos"
    access = "family"
  }
}
`+appRoute("passwords", backend)))
	g := startServer(t, config, Options{})
	c := &http.Client{}
	if code, _ := get(t, c, g.addr, "photos.example.com", "/"); code != http.StatusServiceUnavailable {
		t.Errorf("family route without a secret: %d", code)
	}
	if code, _ := get(t, c, g.addr, "passwords.example.com", "/"); code != http.StatusOK {
		t.Errorf("app route: %d", code)
	}
}
