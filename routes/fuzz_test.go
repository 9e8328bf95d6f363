package routes

import (
	"io"
	"math"
	"os"
	"path"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// FuzzParse: no input makes Parse panic, and whatever Parse accepts compiles
// into a table that keeps the validation promises.
func FuzzParse(f *testing.F) {
	if src, err := os.ReadFile(shippedFile); err == nil {
		f.Add(src)
	}
	for _, tc := range validationCases {
		f.Add([]byte(tc.src))
	}
	f.Add([]byte(nestedSrc))
	for _, s := range []string{
		"",
		"domain = \"example.com\"\n",
		"domain = \"example.com\"\ntailnet { tags = [null] }\n",
		"domain = \"example.com\"\ntailnet {\n  admins = [[\"a\"]]\n  tags = \"tag:x\"\n}\n",
		"domain = \"example.com\"\nlimit {\n  rate = \"Inf\"\n  burst = 1e400\n}\n",
		"domain = \"example.com\"\nserver {\n  max_header_bytes = \"NaN\"\n  idle_timeout = \"-1s\"\n}\n",
		"domain = \"example.com\"\nroute \"a\" {\n  backend = \"http://127.0.0.1:1\"\n  max_body = \"1e30TB\"\n  cloudflare {\n    host = \"${\"a\"}\"\n    access = \"app\"\n  }\n}\n",
		"domain = \"example.com\"\nroute \"a\" {\n  backend = \"unix:///x\"\n  tailnet {\n    access = \"admin\"\n    identity_headers = [\"remote-user\"]\n    node = false\n  }\n}\n",
		"domain = \"example.com\"\nroute \"a\" {\n  backend = \"http://127.0.0.1:1\"\n  cloudflare {\n    host = \"a\"\n    access = \"app\"\n  }\n  path \"/login\" {\n    ban {\n      failures = 5\n      window = \"10m\"\n      ban_time = \"1h\"\n      statuses = [401, null]\n    }\n  }\n}\n",
		"domain = \"example.com\"\noidc {\n  issuer = \"https://auth.example.com/realms/home\"\n  client_id = \"gatehouse\"\n  client_secret_file = \"s\"\n  scopes = [\"openid\", null]\n  groups_from_id_token = [null]\n  cookie_domain = \"co.uk\"\n}\n",
		"domain = upper(\"x\")\n",
		"domain = var.x\n",
		"route {}\n",
		"route \"\" {}\n",
		"\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, file, diags := Parse(src, "f.hcl")
		for _, d := range diags {
			_ = FormatDiagnostic(d)
		}
		WriteDiagnostics(io.Discard, diags, file)
		if cfg == nil {
			if !diags.HasErrors() {
				t.Fatalf("nil Config without an error:\n%s", formatAll(diags))
			}
			return
		}
		if diags.HasErrors() {
			t.Fatalf("Config returned with errors:\n%s", formatAll(diags))
		}
		for _, d := range cfg.Warnings {
			if d.Severity != hcl.DiagWarning {
				t.Fatalf("Config.Warnings holds %s", FormatDiagnostic(d))
			}
		}
		tab := Compile(cfg)
		_ = Summary(cfg)
		if err := WriteMatrix(io.Discard, cfg, MatrixOptions{Verbose: true}); err != nil {
			t.Fatal(err)
		}
		checkLimit := func(where string, l *Limit) {
			if l == nil {
				return
			}
			for _, rate := range []float64{l.Rate, l.TotalRate} {
				if !(rate >= 0) || math.IsInf(rate, 0) {
					t.Fatalf("%s: limit with rate %v", where, rate)
				}
			}
		}
		checkLimit("top level", cfg.Limit)
		for _, r := range cfg.Routes {
			checkLimit("route "+r.Name, r.Limit)
			for _, p := range r.Paths {
				checkLimit("route "+r.Name+" path "+p.Label, p.Limit)
			}
			if r.Backend.URL == nil || r.Backend.URL.Host == "" {
				t.Fatalf("route %q loaded without a backend URL (raw %q)", r.Name, r.Backend.Raw)
			}
			for _, door := range Doors {
				dr := r.Doors[door]
				if dr == nil {
					continue
				}
				if dr.Host == "" {
					t.Fatalf("route %q: %v door without a host", r.Name, door)
				}
				if door == Cloudflare && (dr.Access == Admin || dr.Access == Members) ||
					door == Tailnet && dr.Access == Family {
					t.Fatalf("route %q: %v access on the %v door", r.Name, dr.Access, door)
				}
				m := tab.Match(door, dr.Host, "/")
				if dr.Access != Closed && (m.Route == nil || m.Access != dr.Access) {
					// Another route may have the same host only if
					// validation failed to catch the duplicate.
					t.Fatalf("route %q: Match(%v, %q, /) = %+v, want access %v", r.Name, door, dr.Host, m, dr.Access)
				}
				for _, p := range r.Paths {
					m := tab.Match(door, dr.Host, p.Prefix)
					if door == Cloudflare && (m.Access == Admin || m.Access == Members) {
						t.Fatalf("route %q path %q: %v on the cloudflare door", r.Name, p.Label, m.Access)
					}
				}
			}
		}
	})
}

// vaultwardenAdmin reports whether a cleaned path is under Vaultwarden's
// admin panel, which the shipped table closes on the cloudflare door.
func vaultwardenAdmin(clean string) bool { return HasPathPrefix(clean, "/admin") }

// keycloakPublic reports whether a cleaned path is one Keycloak's reverse
// proxy guide lists as public.
func keycloakPublic(clean string) bool {
	return HasPathPrefix(clean, "/realms") || HasPathPrefix(clean, "/resources") || HasPathPrefix(clean, "/robots.txt")
}

// FuzzMatch: for any host and (decoded) path, matching against the shipped
// table never panics, cleaning is idempotent, and the closed paths stay
// closed on the cloudflare door in every spelling.
func FuzzMatch(f *testing.F) {
	tab := Compile(loadShipped(f))
	for _, p := range []string{
		"/", "", "/admin", "//admin", "/./admin", "/x/../admin", "/../admin", `\admin`, `\\admin`,
		`/x\..\admin`, "/admin;x", "/admin;/x", "/ADMIN", "/Admin/", "/admin/", "/admin/.", "/admin/..",
		"/admin%2f", "/admin\x00", "/admin#x", "/administrator", "/%61dmin", "admin", "/api/", "/api//x",
		"/realms/../admin/", "/realms/x/../../admin", "/resources/..;/admin", "/robots.txt/../admin",
		"/REALMS/master", "/socket", "/.well-known/",
	} {
		for _, h := range []string{"passwords.example.com", "PASSWORDS.example.com.:443", "auth.example.com", "photos.example.com", "immich", "vaultwarden.tail1234.ts.net", ""} {
			f.Add(h, p)
		}
	}
	f.Fuzz(func(t *testing.T, host, p string) {
		if AmbiguousPath(p) {
			return // the doors refuse it with 400 before matching
		}
		clean := CleanPath(p)
		clean2 := CleanPath(clean)
		if clean2 != clean {
			t.Fatalf("CleanPath not idempotent: %q → %q → %q", p, clean, clean2)
		}
		// Clean in path.Clean's sense, apart from a kept trailing slash.
		if strings.Contains(clean, `\`) || path.Clean(clean) != strings.TrimSuffix(clean, "/") && clean != "/" {
			t.Fatalf("CleanPath(%q) = %q is not clean", p, clean)
		}
		if strings.HasSuffix(p, "/") && !strings.HasSuffix(clean, "/") {
			t.Fatalf("CleanPath(%q) = %q dropped the trailing slash", p, clean)
		}
		for _, door := range Doors {
			m := tab.Match(door, host, clean)
			if m2 := tab.Match(door, host, clean2); m2 != m {
				t.Fatalf("%v %q %q: Match differs between CleanPath and CleanPath∘CleanPath: %+v vs %+v", door, host, p, m, m2)
			}
			if (m.Route == nil) != (m.Access == Closed) || m.Route == nil && m.Rule != nil {
				t.Fatalf("%v %q %q: inconsistent Match %+v", door, host, p, m)
			}
			if m.Route == nil {
				continue
			}
			if door == Cloudflare && (m.Access == Admin || m.Access == Members) {
				t.Fatalf("cloudflare %q %q: %v access", host, p, m.Access)
			}
			if door == Cloudflare && m.Route.Name == "vaultwarden" && vaultwardenAdmin(clean) {
				t.Fatalf("cloudflare %q %q (clean %q) reaches the vaultwarden admin panel", host, p, clean)
			}
			if door == Cloudflare && m.Route.Name == "keycloak" && !keycloakPublic(clean) {
				t.Fatalf("cloudflare %q %q (clean %q) reaches non-public keycloak", host, p, clean)
			}
		}
		if NormalizeHost(host) == "passwords.example.com" && vaultwardenAdmin(clean) {
			if m := tab.Match(Cloudflare, host, clean); m != (Match{}) {
				t.Fatalf("cloudflare %q %q: %+v, want the zero Match", host, p, m)
			}
		}
	})
}
