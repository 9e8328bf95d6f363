package routes

import (
	"strings"
	"testing"
)

// Every preset path is a clean prefix that a path rule could name, and no
// preset names one prefix twice.
func TestPresetPathsValid(t *testing.T) {
	for name, p := range Presets {
		if p.Name != name || len(p.Paths) == 0 {
			t.Errorf("preset %q: name %q, %d paths", name, p.Name, len(p.Paths))
		}
		seen := map[string]bool{}
		for _, path := range p.Paths {
			if !strings.HasPrefix(path, "/") || CleanPath(path) != path || path == "/" {
				t.Errorf("preset %q: %q is not a clean prefix", name, path)
			}
			key := strings.ToLower(strings.TrimSuffix(path, "/"))
			if seen[key] {
				t.Errorf("preset %q names %q twice", name, path)
			}
			seen[key] = true
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

// A preset expands to app path rules at parse time; a rule the file writes
// for the same prefix replaces the preset's; the matrix marks them.
func TestPresetExpands(t *testing.T) {
	cfg, _, diags := Parse([]byte(presetSrc), "t.hcl")
	if diags.HasErrors() {
		t.Fatal(formatAll(diags))
	}
	r := cfg.Routes[0]
	if r.Preset != "immich" {
		t.Errorf("route preset %q", r.Preset)
	}
	byPrefix := map[string]*PathRule{}
	for _, p := range r.Paths {
		byPrefix[p.Prefix] = p
	}
	// immich has 6 paths; /share is written in the file.
	if len(r.Paths) != 2+5 {
		t.Errorf("%d path rules, want 7", len(r.Paths))
	}
	if p := byPrefix["/share"]; p == nil || p.Preset != "" || *p.Access[Cloudflare] != Closed {
		t.Errorf("/share: %+v, want the file's closed rule", p)
	}
	if p := byPrefix["/api"]; p == nil || p.Preset != "immich" || *p.Access[Cloudflare] != App || p.Access[Tailnet] != nil {
		t.Errorf("/api: %+v, want the preset's cloudflare app rule", p)
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
		{Cloudflare, "/api/auth/login", App},
		{Cloudflare, "/.well-known/immich", App},
		{Cloudflare, "/s/holiday", App},
		{Cloudflare, "/_app/immutable/x.js", App},
		{Cloudflare, "/share/abc", Closed},
		{Cloudflare, "/apix", Family},
		{Tailnet, "/api/assets", Members},
		{Tailnet, "/share/abc", Members},
	} {
		m := tab.Match(tc.door, map[Door]string{Cloudflare: "photos.example.com", Tailnet: "immich"}[tc.door], tc.path)
		got := Closed
		if m.Route != nil {
			got = m.Access
		}
		if got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.door, tc.path, got, tc.want)
		}
	}
	var b strings.Builder
	if err := WriteMatrix(&b, cfg); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"path /api/ (immich preset)", "path /.well-known/immich (immich preset)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("matrix lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "/share/ (immich preset)") {
		t.Errorf("matrix shows the replaced preset rule:\n%s", b.String())
	}
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
				"audiobookshelf, immich, jellyfin, navidrome, nextcloud")},
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
			want: []wantDiag{wantErr("t.hcl:5:13", "Preset without a cloudflare block", `route "a" has no cloudflare block`)},
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
