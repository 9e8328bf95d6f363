package proxy_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// TestClosedPathBypass tries to reach vaultwarden's /admin, closed on the
// Cloudflare door, by every spelling a backend might take for /admin. The
// requests go out as raw request lines so that nothing normalises them on
// the way.
func TestClosedPathBypass(t *testing.T) {
	s := startShipped(t)
	ref := notFoundRef(t, s.door)
	vw := s.backends["vaultwarden"]

	for _, target := range []string{
		"/admin",
		"//admin",
		"///admin",
		"/%61dmin",
		"/%41DMIN",
		"/x/../admin",
		"/x/%2e%2e/admin",
		"/./admin",
		"/%2e/admin",
		"/admin%2fsettings",
		"/admin%2Fsettings",
		`/\admin`,
		`/%5cadmin`,
		"/admin;x=1",
		"/admin%3bx=1",
		"/ADMIN",
		"/Admin/",
		"/admin/",
		"/admin/.",
		"/admin#frag",
		"/admin%23frag",
		"/admin?x=1",
		"/api/../admin/users",
		"http://passwords.example.com/admin",
	} {
		before := vw.hits.Load()
		got := withoutDate(s.rawGet(t, "passwords.example.com", target))
		if !bytes.Equal(got, ref) {
			t.Errorf("GET %s: answer differs from the unknown-host 404\n got: %q\nwant: %q", target, got, ref)
		}
		if vw.hits.Load() != before {
			t.Errorf("GET %s reached vaultwarden", target)
		}
	}

	// Two spellings never reach gatehouse's route decision, and so cannot
	// get its 404: net/http refuses a request-target that is not a path
	// (`\admin`) and gatehouse refuses control bytes in a path before it
	// looks at the host at all. Both answers leak nothing: they are the
	// same for an unknown host, and the backend is never reached.
	for _, target := range []string{`\admin`, "/admin%00", "/admin%0d%0a", "/admin%09"} {
		before := vw.hits.Load()
		raw := s.rawGet(t, "passwords.example.com", target)
		resp, _ := parseRaw(t, raw)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: status %d, want 400: %q", target, resp.StatusCode, raw)
		}
		if unk := s.rawGet(t, unknownHost, target); !bytes.Equal(withoutDate(raw), withoutDate(unk)) {
			t.Errorf("GET %s: answer differs from the unknown host's answer to the same request\n got: %q\nwant: %q", target, raw, unk)
		}
		if vw.hits.Load() != before {
			t.Errorf("GET %s reached vaultwarden", target)
		}
	}
}

// TestBackendGetsTheDecidedPath checks that what the backend receives is
// the cleaned path gatehouse decided on, not the spelling the client sent.
func TestBackendGetsTheDecidedPath(t *testing.T) {
	s := startShipped(t)
	vw := s.backends["vaultwarden"]
	for _, c := range []struct {
		target, path, requestURI string
	}{
		{"/alive", "/alive", "/alive"},
		{"/x/../alive", "/alive", "/alive"},
		{"/x/%2e%2e/alive", "/alive", "/alive"},
		{"//alive", "/alive", "/alive"},
		{"/./alive", "/alive", "/alive"},
		{"/%61live", "/alive", "/alive"},
		{`/\alive`, "/alive", "/alive"},
		{"/%5calive", "/alive", "/alive"},
		{"/alive/", "/alive/", "/alive/"},
		{"/alive/..", "/", "/"},
		{"/admin/../alive", "/alive", "/alive"},
		{"/a%2fb", "/a/b", "/a/b"},
		{"/a%20b", "/a b", "/a%20b"},
		{"/api/ciphers?x=1&y=%2F", "/api/ciphers", "/api/ciphers?x=1&y=%2F"},
		{"/administrator", "/administrator", "/administrator"},
	} {
		before := vw.hits.Load()
		raw := s.rawGet(t, "passwords.example.com", c.target)
		resp, body := parseRaw(t, raw)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200: %q", c.target, resp.StatusCode, raw)
			continue
		}
		got := decodeSeen(t, body)
		if got.Route != "vaultwarden" || vw.hits.Load() != before+1 {
			t.Errorf("GET %s: answered by %q", c.target, got.Route)
		}
		if got.Path != c.path || got.RequestURI != c.requestURI {
			t.Errorf("GET %s: backend got path %q (request-target %q), want %q (%q)",
				c.target, got.Path, got.RequestURI, c.path, c.requestURI)
		}
		if strings.Contains(got.RequestURI, "..") || strings.Contains(got.RequestURI, "//") || strings.Contains(got.RequestURI, `\`) {
			t.Errorf("GET %s: backend got an uncleaned request-target %q", c.target, got.RequestURI)
		}
	}
}
