package routes

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

const oidcFamilyRoutes = `
route "photos" {
  backend = "http://127.0.0.1:2283"
  cloudflare {
    host   = "photos"
    access = "family"
  }
}
route "auth" {
  backend = "http://127.0.0.1:8180"
  cloudflare {
    host   = "auth.example.org"
    access = "app"
  }
}
`

// oidcCases: the oidc block's attributes and every mistake in them, each
// reported at its file:line:col.
var oidcCases = []validationCase{
	{
		name: "oidc defaults",
		src: `domain = "example.com"
oidc {
  issuer             = "https://auth.example.com/realms/home"
  client_id          = "gatehouse"
  client_secret_file = "secret"
}
` + oidcFamilyRoutes,
		check: func(t *testing.T, cfg *Config) {
			o := cfg.OIDC
			if o == nil || !slices.Equal(o.Scopes, []string{"openid", "profile", "email"}) ||
				!slices.Equal(o.GroupsFromIDToken, []string{"groups"}) || len(o.GroupsFromAccessToken) != 0 ||
				o.SessionLifetime != 30*24*time.Hour || o.RefreshInterval != 5*time.Minute || o.CookieDomain != "" ||
				o.OutageGrace != time.Hour || o.DeviceRefreshInterval != time.Hour ||
				o.ClientSecretFile != "secret" || o.CookieKeyFile != filepath.Join("oidc", "cookie.keys") {
				t.Errorf("defaults: %+v", o)
			}
			for _, w := range cfg.Warnings {
				if strings.Contains(w.Summary, "not built yet") {
					t.Errorf("stale warning: %v", w)
				}
			}
		},
	},
	{
		name: "oidc everything set",
		src: `domain = "example.com"
oidc {
  issuer                   = "https://auth.example.com/realms/home"
  client_id                = "gatehouse"
  client_secret_file       = "/run/credentials/gatehouse.service/oidc-client-secret"
  scopes                   = ["openid", "email", "offline_access"]
  cookie_domain            = ".Example.com"
  groups_from_id_token     = ["groups"]
  groups_from_access_token = ["realm_access.roles", "resource_access.gatehouse.roles"]
  session_lifetime         = "240h"
  refresh_interval         = "2m"
  outage_grace             = "0"
  device_refresh_interval  = "15m"
  cookie_key_file          = "/var/lib/gatehouse/oidc/cookie.keys"
}
route "photos" {
  backend = "http://127.0.0.1:2283"
  cloudflare {
    host   = "photos"
    access = "family"
  }
}
`,
		check: func(t *testing.T, cfg *Config) {
			o := cfg.OIDC
			if o.CookieDomain != "example.com" || o.SessionLifetime != 240*time.Hour || o.RefreshInterval != 2*time.Minute ||
				o.OutageGrace != 0 || o.DeviceRefreshInterval != 15*time.Minute ||
				!slices.Equal(o.GroupsFromAccessToken, []string{"realm_access.roles", "resource_access.gatehouse.roles"}) ||
				o.CookieKeyFile != "/var/lib/gatehouse/oidc/cookie.keys" || len(o.Scopes) != 3 {
				t.Errorf("config: %+v", o)
			}
		},
	},
	{
		name: "oidc mistakes",
		src: `domain = "example.com"
oidc {
  issuer                   = "http://auth.example.com/realms/home/"
  client_id                = " "
  client_secret_file       = ""
  scopes                   = ["email", "two words"]
  cookie_domain            = "co.uk"
  groups_from_id_token     = ["groups", "realm_access..roles"]
  groups_from_access_token = [""]
  session_lifetime         = "1m"
  refresh_interval         = "1s"
  cookie_key_file          = ""
  outage_grace             = "-1h"
  device_refresh_interval  = "10s"
}
` + oidcFamilyRoutes,
		want: []wantDiag{
			wantErr("t.hcl:3:30", "Invalid issuer", "https issuer URL", "without a trailing slash"),
			wantErr("t.hcl:4:30", "Empty client_id"),
			wantErr("t.hcl:5:30", "Empty client_secret_file"),
			wantErr("t.hcl:6:30", "Scopes without openid", `include "openid"`),
			wantErr("t.hcl:6:30", "Invalid scope", `"two words"`),
			wantErr("t.hcl:7:30", "Invalid cookie_domain", "public suffix"),
			wantErr("t.hcl:8:30", "Invalid claim path", `"realm_access..roles"`, "groups_from_id_token"),
			wantErr("t.hcl:9:30", "Invalid claim path", "groups_from_access_token"),
			wantErr("t.hcl:10:30", "session_lifetime too short"),
			wantErr("t.hcl:11:30", "Invalid refresh_interval", "disabled at the provider"),
			wantErr("t.hcl:12:30", "Empty cookie_key_file"),
			wantErr("t.hcl:13:30", "Invalid outage_grace", `"0"`, `"-1h"`),
			wantErr("t.hcl:14:30", "Invalid device_refresh_interval", "disabled at the provider"),
		},
	},
	{
		name: "oidc outage_grace beyond the session lifetime",
		src: `domain = "example.com"
oidc {
  issuer             = "https://auth.example.com/realms/home"
  client_id          = "gatehouse"
  client_secret_file = "secret"
  session_lifetime   = "24h"
  outage_grace       = "48h"
}
` + oidcFamilyRoutes,
		want: []wantDiag{wantErr("t.hcl:7:24", "Invalid outage_grace", "session_lifetime (24h0m0s)")},
	},
	{
		name: "oidc cookie_domain must cover every family host",
		src: `domain = "example.com"
oidc {
  issuer             = "https://auth.example.com/realms/home"
  client_id          = "gatehouse"
  client_secret_file = "secret"
  cookie_domain      = "example.net"
}
` + oidcFamilyRoutes,
		want: []wantDiag{
			// auth.example.org is an app host: it needs no session.
			wantErr("t.hcl:6:24", "cookie_domain does not cover a family host", `"photos.example.com"`, `"example.net"`),
		},
	},
	{
		name: "oidc required attributes and unknown ones",
		src: `domain = "example.com"
oidc {
  isuer = "https://auth.example.com/realms/home"
}
`,
		want: []wantDiag{
			wantErr("t.hcl:2:6", "Missing required argument", `"issuer"`),
			wantErr("t.hcl:2:6", "Missing required argument", `"client_id"`),
			wantErr("t.hcl:2:6", "Missing required argument", `"client_secret_file"`),
			wantErr("t.hcl:3:3", "Unsupported argument", `Did you mean "issuer"?`),
		},
	},
}

func TestOIDCValidation(t *testing.T) {
	for _, tc := range oidcCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, diags := Parse([]byte(tc.src), "t.hcl")
			used := make([]bool, len(diags))
			for _, w := range tc.want {
				prefix := w.pos + ": " + sevName(w.sev) + ": " + w.summary + ": "
				found := false
				for i, d := range diags {
					if used[i] || d.Severity != w.sev || !strings.HasPrefix(FormatDiagnostic(d), prefix) {
						continue
					}
					ok := true
					for _, s := range w.detail {
						ok = ok && strings.Contains(d.Detail, s)
					}
					if ok {
						used[i], found = true, true
						break
					}
				}
				if !found {
					t.Errorf("no diagnostic %q with %q; got:\n%s", prefix, w.detail, formatAll(diags))
				}
			}
			errs := 0
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					errs++
				}
			}
			wantErrs := 0
			for _, w := range tc.want {
				if w.sev == hcl.DiagError {
					wantErrs++
				}
			}
			if errs != wantErrs {
				t.Errorf("%d errors, want %d:\n%s", errs, wantErrs, formatAll(diags))
			}
			if cfg != nil && tc.check != nil {
				tc.check(t, cfg)
			}
		})
	}
}

// Relative files in the oidc block are taken from routes.hcl's directory.
func TestOIDCRelativePaths(t *testing.T) {
	src := `domain = "example.com"
oidc {
  issuer             = "https://auth.example.com/realms/home"
  client_id          = "gatehouse"
  client_secret_file = "secrets/oidc"
}
`
	cfg, _, diags := Parse([]byte(src), filepath.Join("/etc/gatehouse", "routes.hcl"))
	if cfg == nil {
		t.Fatal(diags)
	}
	if cfg.OIDC.ClientSecretFile != "/etc/gatehouse/secrets/oidc" || cfg.OIDC.CookieKeyFile != "/etc/gatehouse/oidc/cookie.keys" {
		t.Errorf("paths: %q %q", cfg.OIDC.ClientSecretFile, cfg.OIDC.CookieKeyFile)
	}
}

func TestUsesAccess(t *testing.T) {
	fam, app := Family, App
	r := &Route{Paths: []*PathRule{{Access: [numDoors]*Access{Cloudflare: &fam}}}}
	if r.UsesAccess(Cloudflare, Family) {
		t.Error("a route without the door uses it")
	}
	r.Doors[Cloudflare] = &DoorRule{Access: App}
	if !r.UsesAccess(Cloudflare, Family) || r.UsesAccess(Tailnet, Family) {
		t.Error("family in a path rule not seen")
	}
	r.Paths[0].Access[Cloudflare] = &app
	if r.UsesAccess(Cloudflare, Family) || !r.UsesAccess(Cloudflare, App) {
		t.Error("wrong access reported")
	}
}
