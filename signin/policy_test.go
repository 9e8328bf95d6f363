package signin

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/routes"
)

func familyHosts(h string) bool {
	return h == "photos.example.com" || h == "files.example.com"
}

// The open-redirect variants of oauth2-proxy's advisories
// (GHSA-qqxw-m5fj-f7gv, GHSA-j7px-6hwj-hpjg, GHSA-5m6c-jp6f-2vcv,
// GHSA-4mf2-f3wh-gvf2) and their relatives: none may lead off the table.
var openRedirects = []string{
	"//evil.com",
	"//evil.com/",
	"///evil.com",
	"/\\evil.com",
	"\\/evil.com",
	"/%09/evil.com",
	"/\t/evil.com",
	"/%2F/evil.com",
	"/%2f%2fevil.com",
	"/%5Cevil.com",
	"/%5c/evil.com",
	"/ /evil.com",
	"/.evil.com",
	"/%2Eevil.com",
	"https:evil.com",
	"https:/evil.com",
	"https:///evil.com",
	"http://photos.example.com/",
	"https://evil.com",
	"https://evil.com/",
	"HTTPS://evil.com",
	"https://evilexample.com/",
	"https://photos.example.com.evil.com/",
	"https://example.com.evil.com/",
	"https://.evil.com/",
	"https://photos.example.com@evil.com/",
	"https://photos.example.com:443@evil.com/",
	"https://user:pw@photos.example.com/",
	"https://evil.com#@photos.example.com",
	"https://evil.com?@photos.example.com",
	"https://evil.com\\@photos.example.com",
	"https://photos.example.com\\@evil.com",
	"https://photos.example.com%2F@evil.com",
	"https://photos.example.com./",
	"https://photos.example.com:8443/",
	"https://photos.example.com//evil.com",
	"https://auth.example.com/", // in the table, but not a family host
	"javascript:alert(1)",
	"data:text/html,hi",
	"evil.com",
	"%2F%2Fevil.com",
	"/\r\nLocation: https://evil.com",
	"\x00/x",
	"/" + strings.Repeat("a", maxReturnLen),
}

func TestReturnURLRefusesOpenRedirects(t *testing.T) {
	for _, raw := range openRedirects {
		if got, err := ReturnURL(raw, "photos.example.com", familyHosts); err == nil {
			t.Errorf("ReturnURL(%q) = %q, want refused", raw, got)
		}
	}
}

func TestReturnURLAccepts(t *testing.T) {
	for _, tc := range []struct{ raw, current, want string }{
		{"", "photos.example.com", "https://photos.example.com/"},
		{"/", "photos.example.com", "https://photos.example.com/"},
		{"/albums/1?x=1&y=%20", "photos.example.com", "https://photos.example.com/albums/1?x=1&y=%20"},
		{"/a/.b", "photos.example.com", "https://photos.example.com/a/.b"},
		{"https://files.example.com/docs?a=b", "photos.example.com", "https://files.example.com/docs?a=b"},
		{"https://FILES.example.com", "photos.example.com", "https://files.example.com/"},
		{"https://files.example.com:443/x", "photos.example.com", "https://files.example.com:443/x"},
		{"https://photos.example.com:8443/x", "photos.example.com:8443", "https://photos.example.com:8443/x"},
	} {
		got, err := ReturnURL(tc.raw, tc.current, familyHosts)
		if err != nil || got != tc.want {
			t.Errorf("ReturnURL(%q, %q) = %q, %v; want %q", tc.raw, tc.current, got, err, tc.want)
		}
	}
	if _, err := ReturnURL("/", "auth.example.com", familyHosts); err == nil {
		t.Error("a path on a host that is not a family host was accepted")
	}
}

func FuzzReturnURL(f *testing.F) {
	for _, s := range openRedirects {
		f.Add(s)
	}
	f.Add("/albums")
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := ReturnURL(raw, "photos.example.com", familyHosts)
		if err != nil {
			return
		}
		// Whatever is accepted is an absolute https URL whose authority
		// every parser reads as a family host, without userinfo.
		u, perr := url.Parse(got)
		if perr != nil || u.Scheme != "https" || u.User != nil || !familyHosts(u.Hostname()) ||
			strings.ContainsAny(got, "\\\t\r\n ") || !strings.HasPrefix(got, "https://"+u.Host+"/") {
			t.Fatalf("ReturnURL(%q) = %q", raw, got)
		}
	})
}

func TestIsNavigation(t *testing.T) {
	for _, tc := range []struct {
		method string
		hdr    map[string]string
		want   bool
	}{
		{"GET", map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Accept": "text/html"}, true},
		{"GET", map[string]string{"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, true},
		{"HEAD", map[string]string{"Accept": "text/html"}, true},
		{"GET", map[string]string{"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Accept": "*/*"}, false},
		{"GET", map[string]string{"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image", "Accept": "image/*"}, false},
		{"GET", map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}, false},
		{"GET", map[string]string{"Accept": "application/json"}, false},
		{"GET", map[string]string{"Accept": "*/*"}, false}, // curl
		{"GET", map[string]string{"Accept": "text/html", "X-Requested-With": "XMLHttpRequest"}, false},
		{"POST", map[string]string{"Sec-Fetch-Mode": "navigate", "Accept": "text/html"}, false},
		{"PUT", map[string]string{"Accept": "text/html"}, false},
	} {
		r, _ := http.NewRequest(tc.method, "https://photos.example.com/", nil)
		for k, v := range tc.hdr {
			r.Header.Set(k, v)
		}
		if got := IsNavigation(r); got != tc.want {
			t.Errorf("%s %v: IsNavigation = %v, want %v", tc.method, tc.hdr, got, tc.want)
		}
	}
}

func TestCheckEmail(t *testing.T) {
	for _, ok := range []string{"alice@example.com", "a.b+c@sub.example.org"} {
		if err := CheckEmail(ok); err != nil {
			t.Errorf("CheckEmail(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{
		"a@b@example.com", "mallory@evil.example@example.com", "@example.com", "alice@", "alice",
		"alice@example", "al ice@example.com", "\"a@b\"@example.com", "alice@example.com.", "a\n@example.com",
		"<alice@example.com>", "alice@.example.com",
	} {
		if err := CheckEmail(bad); err == nil {
			t.Errorf("CheckEmail(%q) accepted", bad)
		}
	}
}

func TestGroupsFromClaims(t *testing.T) {
	claims := map[string]any{
		"groups":       []any{"/family", "/family/parents", 7, ""},
		"realm_access": map[string]any{"roles": []any{"offline_access", "family-admin"}},
		"resource_access": map[string]any{
			"gatehouse": map[string]any{"roles": []any{"viewer"}},
			"other":     map[string]any{"roles": []any{"nope"}},
		},
		"single": "one",
		"nested": map[string]any{"not": map[string]any{"a": "list"}},
	}
	got := GroupsFromClaims(claims, []string{"groups", "realm_access.roles", "resource_access.gatehouse.roles", "single", "missing.path", "nested.not", "groups"})
	want := []string{"/family", "/family/parents", "offline_access", "family-admin", "viewer", "one"}
	if !slices.Equal(got, want) {
		t.Errorf("groups = %q, want %q", got, want)
	}
	many := make([]any, 0, 500)
	for i := 0; i < 500; i++ {
		many = append(many, strings.Repeat("g", i%300+1))
	}
	if g := GroupsFromClaims(map[string]any{"groups": many}, []string{"groups"}); len(g) > maxGroups {
		t.Errorf("%d groups kept, want at most %d", len(g), maxGroups)
	}
}

func TestIdentityFrom(t *testing.T) {
	cfg := &routes.OIDCConfig{GroupsFromIDToken: []string{"groups"}, GroupsFromAccessToken: []string{"realm_access.roles"}}
	id, err := identityFrom(
		map[string]any{"sub": "u1", "email": "alice@example.com", "email_verified": true, "sid": "s1", "groups": []any{"/family"}},
		map[string]any{"realm_access": map[string]any{"roles": []any{"family-admin"}}}, cfg)
	if err != nil || id.Subject != "u1" || id.Email != "alice@example.com" || id.SID != "s1" ||
		!slices.Equal(id.Groups, []string{"/family", "family-admin"}) {
		t.Errorf("identity = %+v, %v", id, err)
	}
	// An unverified address is not passed on.
	id, err = identityFrom(map[string]any{"sub": "u1", "email": "alice@example.com", "email_verified": false}, nil, cfg)
	if err != nil || id.Email != "" {
		t.Errorf("unverified email: %+v, %v", id, err)
	}
	if _, err := identityFrom(map[string]any{"sub": "u1", "email": "a@b@example.com"}, nil, cfg); err != errBadEmail {
		t.Errorf("two @: err = %v", err)
	}
	if _, err := identityFrom(map[string]any{"email": "a@example.com"}, nil, cfg); err == nil {
		t.Error("no subject accepted")
	}
}

func TestJudge(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := &session{Created: now.Add(-time.Hour).UnixNano(), Checked: now.Add(-time.Minute).UnixNano(), Expires: now.Add(time.Hour).UnixNano()}
	if v := judge(s, now, 5*time.Minute, false); v != sessionValid {
		t.Errorf("fresh session: %v", v)
	}
	if v := judge(s, now.Add(5*time.Minute), 5*time.Minute, false); v != sessionRefresh {
		t.Errorf("due session: %v", v)
	}
	if v := judge(s, now, 5*time.Minute, true); v != sessionOver {
		t.Errorf("revoked session: %v", v)
	}
	if v := judge(s, now.Add(time.Hour), 5*time.Minute, false); v != sessionOver {
		t.Errorf("expired session: %v", v)
	}
	if v := judge(s, now.Add(-time.Hour), 5*time.Minute, false); v != sessionRefresh {
		t.Errorf("session checked in the future: %v", v)
	}
}

func TestWithinGrace(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	checked := func(ago time.Duration) *session { return &session{Checked: now.Add(-ago).UnixNano()} }
	for _, c := range []struct {
		ago, grace time.Duration
		want       bool
	}{
		{59 * time.Minute, time.Hour, true},
		{time.Hour, time.Hour, false},
		{time.Minute, 0, false}, // grace 0: never
		{-time.Minute, time.Hour, true},
		{-time.Hour, time.Hour, false}, // checked far in the future: the clock went back
	} {
		if got := withinGrace(checked(c.ago), now, c.grace); got != c.want {
			t.Errorf("checked %v ago, grace %v: %v", c.ago, c.grace, got)
		}
	}
}

func TestRevocationsBounded(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	rv := newRevocations(time.Hour, 4)
	old := &session{ID: "a", Sub: "u", SID: "s0", Created: now.Add(-time.Minute).UnixNano()}
	rv.revoke(revokeSID+"s0", now)
	if !rv.revoked(old) {
		t.Fatal("revoked sid not seen")
	}
	// A session begun after the revocation (same provider session signed
	// in again) is not affected.
	if rv.revoked(&session{ID: "b", Sub: "u", SID: "s0", Created: now.Add(time.Second).UnixNano()}) {
		t.Error("a later sign-in was revoked")
	}
	// Overflow drops the oldest entry but raises the floor: the session it
	// covered stays revoked.
	for i := 1; i <= 10; i++ {
		rv.revoke(revokeSID+string(rune('a'+i)), now.Add(time.Duration(i)*time.Second))
	}
	if len(rv.at) > 4 {
		t.Errorf("%d entries, want at most 4", len(rv.at))
	}
	if !rv.revoked(old) {
		t.Error("overflow let a revoked session back in")
	}
	// Entries older than the session lifetime go first.
	rv2 := newRevocations(time.Minute, 2)
	rv2.revoke("sub:x", now)
	rv2.revoke("sub:y", now.Add(2*time.Minute))
	rv2.revoke("sub:z", now.Add(2*time.Minute))
	if !rv2.floor.IsZero() {
		t.Errorf("floor raised to %v although an expired entry could go", rv2.floor)
	}
	// jti replay window.
	if !rv.firstUse("j1", now, time.Minute) || rv.firstUse("j1", now, time.Minute) {
		t.Error("jti replay not recognised")
	}
}

func TestStripCookies(t *testing.T) {
	s := &SignIn{names: namesFor("example.com")}
	h := http.Header{"Cookie": {
		"a=1; __Secure-gatehouse=xyz; b=2; __Secure-gatehouse-1=more",
		"__Host-gatehouse-flow-abc=f",
		"c=3",
	}}
	s.StripCookies(h)
	if got := h["Cookie"]; !slices.Equal(got, []string{"a=1; b=2", "c=3"}) {
		t.Errorf("Cookie = %q", got)
	}
	h = http.Header{"Cookie": {"__Secure-gatehouse=xyz"}}
	s.StripCookies(h)
	if _, ok := h["Cookie"]; ok {
		t.Errorf("empty Cookie header kept: %q", h["Cookie"])
	}
	// Look-alike names of the backend's own are kept.
	h = http.Header{"Cookie": {"gatehouse=1; my__Secure-gatehouse=2"}}
	s.StripCookies(h)
	if got := h.Get("Cookie"); got != "gatehouse=1; my__Secure-gatehouse=2" {
		t.Errorf("Cookie = %q", got)
	}
}

func TestCookieNames(t *testing.T) {
	if n := namesFor(""); n.session != "__Host-gatehouse" || n.domain != "" {
		t.Errorf("host-only names: %+v", n)
	}
	if n := namesFor("example.com"); n.session != "__Secure-gatehouse" || n.domain != "example.com" {
		t.Errorf("domain names: %+v", n)
	}
	if !strings.HasPrefix(flowCookieName(strings.Repeat("x", 43)), "__Host-") {
		t.Error("flow cookie is not __Host-")
	}
}

// The same-origin rule for the POSTs of gatehouse's own pages: fetch
// metadata decides where the browser sends it (even with "Origin: null",
// which Chromium sends under a no-referrer policy); Origin only without it.
func TestSameOrigin(t *testing.T) {
	for _, c := range []struct {
		site, origin string
		want         bool
	}{
		{"same-origin", "https://photos.example.com", true},
		{"same-origin", "null", true},
		{"same-origin", "", true},
		{"none", "", true},
		{"same-site", "https://files.example.com", false},
		{"cross-site", "https://evil.example.net", false},
		{"cross-site", "https://photos.example.com", false},
		{"", "https://photos.example.com", true},
		{"", "HTTPS://Photos.example.com", true},
		{"", "null", false},
		{"", "https://evil.example.net", false},
		{"", "", true}, // not a browser; the form token still guards the devices page
	} {
		r, _ := http.NewRequest(http.MethodPost, "https://photos.example.com/.gatehouse/devices", nil)
		if c.site != "" {
			r.Header.Set("Sec-Fetch-Site", c.site)
		}
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if got := sameOrigin(r, "photos.example.com"); got != c.want {
			t.Errorf("Sec-Fetch-Site %q, Origin %q: %v, want %v", c.site, c.origin, got, c.want)
		}
	}
}
