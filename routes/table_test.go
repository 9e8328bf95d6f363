package routes

import (
	"testing"
)

func TestCleanPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"admin", "/admin"},
		{"//admin", "/admin"},
		{"/a//b///c", "/a/b/c"},
		{`\admin`, "/admin"},
		{`\\admin\x`, "/admin/x"},
		{`/a\..\admin`, "/admin"},
		{"/./admin", "/admin"},
		{"/x/../admin", "/admin"},
		{"/../../admin", "/admin"},
		{"/admin/.", "/admin"},
		{"/admin/..", "/"},
		{"/admin/./", "/admin/"},
		{"/admin/x/../", "/admin/"},
		{"/api/", "/api/"},           // trailing slash kept
		{"/api//", "/api/"},          // … but only one
		{"/a/b/", "/a/b/"},           // already clean
		{"/...", "/..."},             // three dots is a name
		{"/..a/.b/a.", "/..a/.b/a."}, // so are these
		{"/admin;x", "/admin;x"},
		{"/ADMIN", "/ADMIN"},    // case is the backend's business
		{"/a/b;x/../c", "/a/c"}, // a ";" inside a name is the name's
	}
	for _, tt := range tests {
		if got := CleanPath(tt.in); got != tt.want {
			t.Errorf("CleanPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := CleanPath(CleanPath(tt.in)); got != tt.want {
			t.Errorf("CleanPath(CleanPath(%q)) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestAmbiguousPath: segments that servlet containers and WebDAV servers
// read differently from gatehouse are recognised in every position; names
// that merely contain ";" are not.
func TestAmbiguousPath(t *testing.T) {
	for _, p := range []string{
		"/;/admin", "/;x/admin", "/;", "/a/;", "/admin/;jsessionid=1/x",
		"/realms/..;/admin/", "/realms/..;x=1/admin", "/a/.;x/b", "/a/..;",
		"/remote.php/dav/files/alice/Docs/Sub/..;tmp", `\;\admin`, `/a\..;\b`,
	} {
		if !AmbiguousPath(p) {
			t.Errorf("AmbiguousPath(%q) = false, want true", p)
		}
	}
	for _, p := range []string{
		"/", "/admin", "/admin;x", "/a;b/c", "/...;x", "/..a;b", "/.a;b", "/a/b.;c", "/x;", "/remote.php/dav/files/alice/Docs/Sub/tmp",
	} {
		if AmbiguousPath(p) {
			t.Errorf("AmbiguousPath(%q) = true, want false", p)
		}
	}
}

func TestCleanPathNoAllocWhenClean(t *testing.T) {
	for _, p := range []string{"/", "/api/", "/a/b/c", "/remote.php/dav/files/x", "/...", "/.well-known/x", "/a;b"} {
		var out string
		allocs := testing.AllocsPerRun(100, func() { out = CleanPath(p) })
		if allocs != 0 {
			t.Errorf("CleanPath(%q) allocates %v times; a clean path must come back as is", p, allocs)
		}
		if out != p {
			t.Errorf("CleanPath(%q) = %q", p, out)
		}
	}
}

func TestHasPathPrefix(t *testing.T) {
	tests := []struct {
		p, prefix string
		want      bool
	}{
		{"/admin", "/admin", true},
		{"/admin/", "/admin", true},
		{"/admin/x", "/admin", true},
		{"/admin;x", "/admin", true},
		{"/admin#x", "/admin", true},
		{"/ADMIN", "/admin", true},
		{"/Admin/Users", "/admin", true},
		{"/administrator", "/admin", false},
		{"/admi", "/admin", false},
		{"/", "/admin", false},
		{"/x/admin", "/admin", false},
		{"/api/v1", "/api", true},
		{"/apiv1", "/api", false},
		{"/robots.txt", "/robots.txt", true},
		{"/robots.txt.bak", "/robots.txt", false},
	}
	for _, tt := range tests {
		if got := HasPathPrefix(tt.p, tt.prefix); got != tt.want {
			t.Errorf("HasPathPrefix(%q, %q) = %v, want %v", tt.p, tt.prefix, got, tt.want)
		}
	}
}

func TestNormalizeHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"photos.example.com", "photos.example.com"},
		{"Photos.Example.COM", "photos.example.com"},
		{"photos.example.com:443", "photos.example.com"},
		{"photos.example.com.", "photos.example.com"},
		{"PHOTOS.example.com.:8443", "photos.example.com"},
		{"immich", "immich"},
		{"[::1]:8750", "[::1]"},
		{"[::1]", "[::1]"},
		{"[FE80::1]:80", "[fe80::1]"},
		{"127.0.0.1:8750", "127.0.0.1"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := NormalizeHost(tt.in); got != tt.want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if a := testing.AllocsPerRun(100, func() { NormalizeHost("photos.example.com:443") }); a != 0 {
		t.Errorf("NormalizeHost of a lower-case host allocates %v times", a)
	}
}

// nestedSrc has nested path rules on both doors, written shortest first so
// that file order cannot be what makes the longest prefix win.
const nestedSrc = `domain = "example.com"
tailnet {}
route "app" {
  backend = "http://127.0.0.1:3000"
  tailnet {
    access = "members"
  }
  cloudflare {
    host   = "app"
    access = "family"
  }
  path "/api/" {
    cloudflare = "app"
  }
  path "/api/admin/" {
    tailnet    = "admin"
    cloudflare = "closed"
  }
  path "/api/admin/health" {
    cloudflare = "app"
  }
  path "/api/admin/logs" {
    tailnet = "admin"
  }
}
`

func compileSrc(t testing.TB, src string) *Table {
	t.Helper()
	cfg, _, diags := Parse([]byte(src), "t.hcl")
	if diags.HasErrors() {
		t.Fatalf("Parse: %s", formatAll(diags))
	}
	return Compile(cfg)
}

func TestMatchLongestPrefixWins(t *testing.T) {
	tab := compileSrc(t, nestedSrc)
	tests := []struct {
		door       Door
		path       string
		want       Access // Closed: zero Match
		wantPrefix string // the Match's Rule; "" for none
	}{
		{Cloudflare, "/", Family, ""},
		{Cloudflare, "/apiary", Family, ""},
		{Cloudflare, "/api", App, "/api"},
		{Cloudflare, "/api/photos", App, "/api"},
		{Cloudflare, "/api/admin", Closed, ""},
		{Cloudflare, "/api/admin/users", Closed, ""},
		{Cloudflare, "/API/Admin/users", Closed, ""},
		{Cloudflare, "/api/admin/health", App, "/api/admin/health"},
		{Cloudflare, "/api/admin/healthz", Closed, ""},
		// /api/admin/logs sets only the tailnet: the cloudflare access comes
		// from the next rule out, /api/admin/, but Rule is still the
		// most specific one.
		{Cloudflare, "/api/admin/logs", Closed, ""},
		{Tailnet, "/", Members, ""},
		{Tailnet, "/api/photos", Members, "/api"},
		{Tailnet, "/api/admin/users", Admin, "/api/admin"},
		{Tailnet, "/api/admin/health", Admin, "/api/admin/health"},
		{Tailnet, "/api/admin/logs/today", Admin, "/api/admin/logs"},
	}
	for _, tt := range tests {
		host := "app.example.com"
		if tt.door == Tailnet {
			host = "app"
		}
		m := tab.Match(tt.door, host, CleanPath(tt.path))
		if tt.want == Closed {
			if m != (Match{}) {
				t.Errorf("%v %s: Match = %+v, want the zero Match", tt.door, tt.path, m)
			}
			continue
		}
		if m.Route == nil || m.Route.Name != "app" || m.Access != tt.want {
			t.Errorf("%v %s: Match = %+v, want route app with %v", tt.door, tt.path, m, tt.want)
			continue
		}
		gotPrefix := ""
		if m.Rule != nil {
			gotPrefix = m.Rule.Prefix
		}
		if gotPrefix != tt.wantPrefix {
			t.Errorf("%v %s: Rule %q, want %q", tt.door, tt.path, gotPrefix, tt.wantPrefix)
		}
	}
}

func TestMatchHostVariants(t *testing.T) {
	tab := compileSrc(t, nestedSrc)
	for _, host := range []string{
		"app.example.com", "APP.Example.Com", "app.example.com:443", "app.example.com.",
		"App.Example.com.:8443",
	} {
		if m := tab.Match(Cloudflare, host, "/"); m.Route == nil || m.Access != Family {
			t.Errorf("cloudflare %q: Match = %+v, want app/family", host, m)
		}
	}
	for _, host := range []string{
		"app", "APP", "app:443", "app.", "app.tail1234.ts.net", "App.Tail1234.TS.net.:443",
	} {
		if m := tab.Match(Tailnet, host, "/"); m.Route == nil || m.Access != Members {
			t.Errorf("tailnet %q: Match = %+v, want app/members", host, m)
		}
	}
	// Hosts of the other door, near misses and garbage match nothing.
	for _, tt := range []struct {
		door Door
		host string
	}{
		{Cloudflare, "app"},
		{Cloudflare, "app.example.com.evil.com"},
		{Cloudflare, "xapp.example.com"},
		{Cloudflare, "app.example.co"},
		{Cloudflare, ""},
		{Cloudflare, "[::1]:443"},
		{Tailnet, "apps"},
		{Tailnet, ""},
		{Tailnet, ".app"},
		{Door(7), "app"},
	} {
		if m := tab.Match(tt.door, tt.host, "/"); m != (Match{}) {
			t.Errorf("%v %q: Match = %+v, want the zero Match", tt.door, tt.host, m)
		}
	}
}
