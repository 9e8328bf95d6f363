package routes

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

// Every preset path is a clean prefix that a path rule could name, with an
// access a preset may set and at least one citation of the source that
// needs it ("owner/repository path: why"); no preset names one prefix twice,
// and every default preset opens something.
func TestPresetPathsValid(t *testing.T) {
	cite := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+ [^ :]+\.[a-z]+(?: \([^)]*\))?(: .+)?$`)
	for name, p := range Presets {
		if p.Name != name || len(p.Paths) == 0 {
			t.Errorf("preset %q: name %q, %d paths", name, p.Name, len(p.Paths))
		}
		seen := map[string]bool{}
		opens := false
		for _, pp := range p.Paths {
			path := pp.Prefix
			if !strings.HasPrefix(path, "/") || CleanPath(path) != path || path == "/" {
				t.Errorf("preset %q: %q is not a clean prefix", name, path)
			}
			key := strings.ToLower(strings.TrimSuffix(path, "/"))
			if seen[key] {
				t.Errorf("preset %q names %q twice", name, path)
			}
			seen[key] = true
			switch pp.Access {
			case App:
				opens = true
			case Closed, Family:
			default:
				t.Errorf("preset %q: %q is %v; a preset sets app, closed or family", name, path, pp.Access)
			}
			if len(pp.Why) == 0 {
				t.Errorf("preset %q: %q cites nothing", name, path)
			}
			for _, w := range pp.Why {
				if !cite.MatchString(w) {
					t.Errorf("preset %q: %q: citation %q is not \"owner/repository path/file.ext: why\"", name, path, w)
				}
			}
		}
		if !opens {
			t.Errorf("preset %q opens no path", name)
		}
	}
}

// docs/apps.md explains every preset path: a path a preset adds without a
// word in the docs is a path nobody can check.
func TestPresetPathsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/apps.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range Presets {
		if !bytes.Contains(doc, []byte("`"+name+"`")) {
			t.Errorf("docs/apps.md does not name preset `%s`", name)
		}
		for _, pp := range p.Paths {
			if !bytes.Contains(doc, []byte("`"+pp.Prefix+"`")) {
				t.Errorf("docs/apps.md does not mention `%s` of preset %q", pp.Prefix, name)
			}
		}
	}
}

const presetSrc = `domain = "example.com"
route "immich" {
  backend = "http://127.0.0.1:2283"
  preset  = "immich"
  tailnet {
    access = "members"
  }
  cloudflare {
    host   = "photos"
    access = "family"
  }
  # Explicit rules win over the preset's for the same prefix.
  path "/share" {
    cloudflare = "closed"
  }
  path "/api/auth/login" {
    limit {
      rate = "10/min"
    }
  }
}
`

// matchAccess is the access a request gets, Closed for the zero Match.
func matchAccess(tab *Table, door Door, host, path string) Access {
	m := tab.Match(door, host, CleanPath(path))
	if m.Route == nil {
		return Closed
	}
	return m.Access
}

// A preset expands to path rules at parse time — app and closed ones for
// immich; a rule the file writes for the same prefix replaces the preset's;
// the longest prefix wins between them; the matrix marks them.
func TestPresetExpands(t *testing.T) {
	cfg, _, diags := Parse([]byte(presetSrc), "t.hcl")
	if diags.HasErrors() {
		t.Fatal(formatAll(diags))
	}
	r := cfg.Routes[0]
	if strings.Join(r.Presets, ",") != "immich" {
		t.Errorf("route presets %q", r.Presets)
	}
	byPrefix := map[string]*PathRule{}
	for _, p := range r.Paths {
		byPrefix[p.Prefix] = p
	}
	// The file writes /share (replacing the preset's) and /api/auth/login.
	if want := len(Presets["immich"].Paths) + 1; len(r.Paths) != want {
		t.Errorf("%d path rules, want %d", len(r.Paths), want)
	}
	if p := byPrefix["/share"]; p == nil || p.Preset != "" || *p.Access[Cloudflare] != Closed {
		t.Errorf("/share: %+v, want the file's closed rule", p)
	}
	if p := byPrefix["/api"]; p == nil || p.Preset != "immich" || *p.Access[Cloudflare] != App || p.Access[Tailnet] != nil {
		t.Errorf("/api: %+v, want the preset's cloudflare app rule", p)
	}
	if p := byPrefix["/api/auth/admin-sign-up"]; p == nil || p.Preset != "immich" || *p.Access[Cloudflare] != Closed {
		t.Errorf("/api/auth/admin-sign-up: %+v, want the preset's closed rule", p)
	}
	tab := Compile(cfg)
	for _, tc := range []struct {
		door Door
		path string
		want Access
	}{
		{Cloudflare, "/", Family},
		{Cloudflare, "/albums", Family},
		{Cloudflare, "/api/assets", App},
		{Cloudflare, "/API/server/ping", App},
		{Cloudflare, "/api/auth/login", App}, // the file's rule sets a limit, not access
		{Cloudflare, "/api/auth/admin-sign-up", Closed},
		{Cloudflare, "/API/Auth/Admin-Sign-Up", Closed},
		{Cloudflare, "/api/auth/admin-sign-up/", Closed},
		{Cloudflare, "/api/auth/admin-sign-upx", App},
		{Cloudflare, "/.well-known/immich", App},
		{Cloudflare, "/s/holiday", App},
		{Cloudflare, "/_app/immutable/x.js", App},
		{Cloudflare, "/share/abc", Closed},
		{Cloudflare, "/apix", Family},
		{Tailnet, "/api/assets", Members},
		{Tailnet, "/api/auth/admin-sign-up", Members},
		{Tailnet, "/share/abc", Members},
	} {
		host := map[Door]string{Cloudflare: "photos.example.com", Tailnet: "immich"}[tc.door]
		if got := matchAccess(tab, tc.door, host, tc.path); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.door, tc.path, got, tc.want)
		}
	}
	matrix := checkMatrixRows(t, cfg,
		"/api/ cloudflare app (immich preset)",
		"/.well-known/immich cloudflare app (immich preset)",
		"/api/auth/admin-sign-up cloudflare closed (immich preset)",
		"/share cloudflare closed",
	)
	if strings.Contains(matrix, "/share/ (immich preset)") {
		t.Errorf("matrix shows the replaced preset rule:\n%s", matrix)
	}
}

// checkMatrixRows asserts that `gatehouse routes` prints each of rows (runs
// of spaces folded to one) for cfg, and returns the matrix.
func checkMatrixRows(t *testing.T, cfg *Config, rows ...string) string {
	t.Helper()
	var b strings.Builder
	if err := WriteMatrix(&b, cfg, MatrixOptions{Verbose: true}); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, l := range strings.Split(b.String(), "\n") {
		have[strings.Join(strings.Fields(l), " ")] = true
	}
	for _, want := range rows {
		if !have[want] {
			t.Errorf("matrix lacks %q:\n%s", want, b.String())
		}
	}
	return b.String()
}

// Opt-in presets come beside a default one in a list. Family entries keep
// a browser page behind sign-in below an app prefix, closed entries close
// even when the whole route is app, and a file rule can reopen a closed one.
func TestPresetListsAndAccess(t *testing.T) {
	src := `domain = "example.com"
route "audiobookshelf" {
  backend = "http://127.0.0.1:13378"
  preset  = ["audiobookshelf", "audiobookshelf-share"]
  cloudflare {
    host   = "audiobooks"
    access = "family"
  }
}
route "nextcloud" {
  backend = "http://127.0.0.1:8080"
  preset  = ["nextcloud"]
  cloudflare {
    host   = "files"
    access = "family"
  }
}
route "jellyfin" {
  backend = "http://127.0.0.1:8096"
  preset  = "jellyfin"
  cloudflare {
    host   = "watch"
    access = "app"
  }
  path "/System/Logs" {
    cloudflare = "family"
  }
}
`
	cfg, _, diags := Parse([]byte(src), "t.hcl")
	if diags.HasErrors() {
		t.Fatal(formatAll(diags))
	}
	if got := strings.Join(cfg.Routes[0].Presets, ","); got != "audiobookshelf,audiobookshelf-share" {
		t.Errorf("presets %q", got)
	}
	tab := Compile(cfg)
	for _, tc := range []struct {
		host, path string
		want       Access
	}{
		{"audiobooks.example.com", "/auth/refresh", App},
		{"audiobooks.example.com", "/audiobookshelf/auth/refresh", App},
		{"audiobooks.example.com", "/audiobookshelf/share/abc", App},
		{"audiobooks.example.com", "/audiobookshelf/public/share/abc/track/1", App},
		{"audiobooks.example.com", "/feed/abc", Family}, // audiobookshelf-feed is not chosen
		{"audiobooks.example.com", "/init", Closed},
		{"audiobooks.example.com", "/audiobookshelf/init", Closed},
		{"audiobooks.example.com", "/audiobookshelf/", Family},

		{"files.example.com", "/index.php/login/v2", App},
		{"files.example.com", "/index.php/login/v2/poll", App},
		{"files.example.com", "/login/v2/poll", App},
		{"files.example.com", "/index.php/login/v2/flow/abc", Family},
		{"files.example.com", "/login/v2/grant", Family},
		{"files.example.com", "/index.php/204", App},

		{"watch.example.com", "/", App},
		{"watch.example.com", "/web/index.html", App},
		{"watch.example.com", "/System/Restart", Closed},
		{"watch.example.com", "/system/restart", Closed},
		{"watch.example.com", "/Startup/User", Closed},
		{"watch.example.com", "/System/Info/Public", App},
		{"watch.example.com", "/System/Logs/Log", Family}, // the file's rule replaced the preset's
		{"watch.example.com", "/System/Ping", App},        // unlisted: the route's access
	} {
		if got := matchAccess(tab, Cloudflare, tc.host, tc.path); got != tc.want {
			t.Errorf("%s%s: %s, want %s", tc.host, tc.path, got, tc.want)
		}
	}
	checkMatrixRows(t, cfg,
		"/audiobookshelf/share/ cloudflare app (audiobookshelf-share preset)",
		"/init cloudflare closed (audiobookshelf preset)",
		"/index.php/login/v2/flow cloudflare family (nextcloud preset)",
		"/System/Restart cloudflare closed (jellyfin preset)",
		"/System/Logs cloudflare family",
	)
}

func init() {
	validationCases = append(validationCases,
		validationCase{
			name: "unknown preset",
			src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:2283"
  preset  = "imich"
  cloudflare {
    host   = "a"
    access = "family"
  }
}
`,
			want: []wantDiag{wantErr("t.hcl:4:13", "Unknown preset", `"imich" is not a preset`,
				"audiobookshelf, audiobookshelf-feed, audiobookshelf-share, immich, jellyfin, navidrome, nextcloud")},
		},
		validationCase{
			name: "preset without a cloudflare block",
			src: `domain = "example.com"
tailnet {}
route "a" {
  backend = "http://127.0.0.1:2283"
  preset  = "jellyfin"
  tailnet {
    access = "members"
  }
}
`,
			want: []wantDiag{wantErr("t.hcl:5:13", "Preset without a cloudflare block", `route "a" has neither block`)},
		},
		validationCase{
			name: "unknown preset in a list",
			src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:13378"
  preset  = ["audiobookshelf", "audiobookshelf-shares"]
  cloudflare {
    host   = "a"
    access = "family"
  }
}
`,
			want: []wantDiag{wantErr("t.hcl:4:13", "Unknown preset", `"audiobookshelf-shares" is not a preset`, "audiobookshelf-feed, audiobookshelf-share")},
		},
		validationCase{
			name: "preset named twice",
			src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:13378"
  preset  = ["audiobookshelf", "audiobookshelf"]
  cloudflare {
    host   = "a"
    access = "family"
  }
}
`,
			want: []wantDiag{wantErr("t.hcl:4:13", "Duplicate preset", `preset "audiobookshelf" is named twice in route "a"`)},
		},
		validationCase{
			name: "preset of the wrong type",
			src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:13378"
  preset  = { name = "audiobookshelf" }
  cloudflare {
    host   = "a"
    access = "family"
  }
}
`,
			want: []wantDiag{wantErr("t.hcl:4:13", "Wrong type for preset", "preset must be a preset name, or a list of them")},
		},
		validationCase{
			name: "keycloak master realm through a realms prefix",
			src: `domain = "example.com"
route "keycloak" {
  backend = "http://127.0.0.1:8180"
  cloudflare {
    host   = "auth"
    access = "closed"
  }
  path "/realms/" {
    cloudflare = "app"
  }
}
`,
			want: []wantDiag{wantWarn("t.hcl:8:3", "Keycloak master realm on the cloudflare door",
				`route "keycloak" lets the cloudflare door reach /realms/master/ as app`, `path "/realms/home/"`)},
		},
		validationCase{
			name: "keycloak master realm on an app route",
			src: `domain = "example.com"
route "keycloak" {
  backend = "http://127.0.0.1:8180"
  cloudflare {
    host   = "auth"
    access = "app"
  }
  path "/realms/home/" {
    cloudflare = "app"
  }
  path "/admin/" {
    cloudflare = "closed"
  }
}
`,
			want: []wantDiag{wantWarn("t.hcl:4:3", "Keycloak master realm on the cloudflare door", "/realms/master/ as app")},
		},
		validationCase{
			name: "keycloak household realm only",
			src: `domain = "example.com"
route "keycloak" {
  backend = "http://127.0.0.1:8180"
  cloudflare {
    host   = "auth"
    access = "app"
  }
  path "/realms/" {
    cloudflare = "closed"
  }
  path "/realms/home/" {
    cloudflare = "app"
  }
}
`,
			check: func(t *testing.T, cfg *Config) {
				if len(cfg.Warnings) != 0 {
					t.Errorf("warnings: %s", formatAll(cfg.Warnings))
				}
			},
		},
		validationCase{
			name: "unknown cloudflare identity header",
			src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:2283"
  cloudflare {
    host   = "a"
    access = "family"
    identity_headers = ["Remote-User", "Tailscale-User-Login"]
  }
}
`,
			want: []wantDiag{wantErr("t.hcl:7:24", "Unknown identity header",
				`"Tailscale-User-Login" is not an identity header gatehouse sends on the cloudflare door`,
				"X-Forwarded-User, X-Forwarded-Email, X-Forwarded-Groups, X-Forwarded-Preferred-Username, Remote-User, Remote-Email, Remote-Groups, X-Remote-User")},
		},
		validationCase{
			name: "cloudflare identity headers",
			src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:2283"
  cloudflare {
    host   = "a"
    access = "family"
    identity_headers = ["remote-user", "X-Forwarded-Groups", "Remote-User"]
  }
}
`,
			check: func(t *testing.T, cfg *Config) {
				got := cfg.Routes[0].Doors[Cloudflare].IdentityHeaders
				if strings.Join(got, ",") != "Remote-User,X-Forwarded-Groups" {
					t.Errorf("IdentityHeaders = %q", got)
				}
				if o := cfg.OIDC; o != nil {
					t.Errorf("oidc %+v", o)
				}
			},
		},
		validationCase{
			name: "identity headers on an app route",
			src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:2283"
  cloudflare {
    host   = "a"
    access = "app"
    identity_headers = ["Remote-User"]
  }
}
`,
			want: []wantDiag{wantWarn("t.hcl:4:3", "Identity headers without family access", `route "a" sends identity headers`)},
		},
		validationCase{
			name: "device token header",
			src: `domain = "example.com"
oidc {
  issuer = "https://auth.example.com/realms/home"
  client_id = "gatehouse"
  client_secret_file = "/run/secret"
  cookie_key_file = "/var/lib/gatehouse/oidc/cookie.keys"
  device_token_header = "x-family-token"
}
`,
			check: func(t *testing.T, cfg *Config) {
				if o := cfg.OIDC; o.DeviceTokenHeader != "X-Family-Token" || o.DeviceTokenFile != "/var/lib/gatehouse/oidc/devices.json" {
					t.Errorf("header %q file %q", o.DeviceTokenHeader, o.DeviceTokenFile)
				}
			},
		},
		validationCase{
			name: "invalid device token header",
			src: `domain = "example.com"
oidc {
  issuer = "https://auth.example.com/realms/home"
  client_id = "gatehouse"
  client_secret_file = "/run/secret"
  device_token_header = "Authorization"
}
`,
			want: []wantDiag{wantErr("t.hcl:6:25", "Invalid device_token_header", `"Authorization" is not one`)},
		},
	)
}
