package routes

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// wantDiag is one diagnostic a validation case must produce. pos is the
// "file:line:col" that FormatDiagnostic prints, i.e. where an editor jumps.
type wantDiag struct {
	sev     hcl.DiagnosticSeverity
	pos     string
	summary string
	detail  []string // substrings of Detail
}

func wantErr(pos, summary string, detail ...string) wantDiag {
	return wantDiag{hcl.DiagError, pos, summary, detail}
}

func wantWarn(pos, summary string, detail ...string) wantDiag {
	return wantDiag{hcl.DiagWarning, pos, summary, detail}
}

type validationCase struct {
	name string
	src  string
	// want lists every error the source must produce (no more, no fewer)
	// and those warnings that matter to the case.
	want []wantDiag
	// check, if set, inspects the Config of a source without errors.
	check func(t *testing.T, cfg *Config)
}

// validationCases has one case per class of mistake in routes.hcl. The
// sources double as seeds for FuzzParse.
var validationCases = []validationCase{
	{
		name: "unknown top-level block",
		src: `domain = "example.com"
rout "x" {
}
`,
		want: []wantDiag{wantErr("t.hcl:2:1", "Unsupported block type",
			`Blocks of type "rout" are not expected here.`, `Did you mean "route"?`)},
	},
	{
		name: "unknown attribute in a route",
		src: `domain = "example.com"
tailnet {}
route "x" {
  backnd = "http://127.0.0.1:2283"
  tailnet {
    access = "admin"
  }
}
`,
		want: []wantDiag{
			wantErr("t.hcl:4:3", "Unsupported argument",
				`An argument named "backnd" is not expected here.`, `Did you mean "backend"?`),
			// The typo also leaves the required backend unset.
			wantErr("t.hcl:3:11", "Missing required argument", `The argument "backend" is required`),
		},
	},
	{
		name: "unknown attribute in a door block",
		src: `domain = "example.com"
route "x" {
  backend = "http://127.0.0.1:2283"
  cloudflare {
    hots   = "x"
    access = "app"
  }
}
`,
		want: []wantDiag{
			wantErr("t.hcl:5:5", "Unsupported argument",
				`An argument named "hots" is not expected here.`, `Did you mean "host"?`),
			wantErr("t.hcl:4:3", "Missing host", `the cloudflare door of route "x" needs host`),
		},
	},
	{
		name: "unknown access level",
		src: `domain = "example.com"
tailnet {}
route "x" {
  backend = "http://127.0.0.1:2283"
  tailnet {
    access = "everyone"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:6:14", "Unknown access level",
			`"everyone" is not an access level; use one of admin, members, family, app, closed.`)},
	},
	{
		name: "unknown access level in a path rule",
		src: `domain = "example.com"
route "x" {
  backend = "http://127.0.0.1:2283"
  cloudflare {
    host   = "x"
    access = "app"
  }
  path "/api/" {
    cloudflare = "Public"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:9:18", "Unknown access level",
			`"Public" is not an access level; use one of admin, members, family, app, closed.`)},
	},
	{
		name: "same cloudflare host twice, bare and fully qualified",
		src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:2283"
  cloudflare {
    host   = "photos"
    access = "app"
  }
}
route "b" {
  backend = "http://127.0.0.1:2284"
  cloudflare {
    host   = "Photos.Example.com."
    access = "app"
  }
}
`,
		// Both point at the `host =` lines, where the fix goes.
		want: []wantDiag{wantErr("t.hcl:12:5", "Duplicate host on the cloudflare door",
			`"photos.example.com" is already the cloudflare host of route "a" (line 5)`)},
	},
	{
		name: "same cloudflare host twice, both bare",
		src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:2283"
  cloudflare {
    host   = "photos"
    access = "app"
  }
}
route "b" {
  backend = "http://127.0.0.1:2284"
  cloudflare {
    host   = "photos"
    access = "app"
  }
}
`,
		// Both point at the `host =` lines, where the fix goes.
		want: []wantDiag{wantErr("t.hcl:12:5", "Duplicate host on the cloudflare door",
			`"photos.example.com" is already the cloudflare host of route "a" (line 5)`)},
	},
	{
		name: "same tailnet host twice",
		src: `domain = "example.com"
tailnet {}
route "a" {
  backend = "http://127.0.0.1:2283"
  tailnet {
    host   = "b"
    access = "admin"
  }
}
route "b" {
  backend = "http://127.0.0.1:2284"
  tailnet {
    access = "admin"
  }
}
`,
		// Route b's host is its name (no host line): the error points at
		// its tailnet block, and at route a's host line.
		want: []wantDiag{wantErr("t.hcl:12:3", "Duplicate host on the tailnet door",
			`"b" is already the tailnet host of route "a" (line 6)`)},
	},
	{
		name: "overlapping path rules",
		src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:2283"
  cloudflare {
    host   = "a"
    access = "app"
  }
  path "/admin" {
    cloudflare = "closed"
  }
  path "/admin/" {
    cloudflare = "app"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:11:8", "Overlapping path rules",
			`path "/admin/" in route "a" is the same prefix as the rule at line 8`)},
	},
	{
		// HasPathPrefix ignores case, so these two would both match /admin/x
		// and the file order would silently pick one.
		name: "overlapping path rules differing in case",
		src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:2283"
  cloudflare {
    host   = "a"
    access = "app"
  }
  path "/admin" {
    cloudflare = "closed"
  }
  path "/ADMIN/" {
    cloudflare = "app"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:11:8", "Overlapping path rules",
			`path "/ADMIN/" in route "a" is the same prefix as the rule at line 8`)},
	},
	{
		name: "admin on the cloudflare door",
		src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:2283"
  cloudflare {
    host   = "a"
    access = "admin"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:6:14", "Tailnet-only access on the Cloudflare door",
			`"admin" needs a tailnet identity, which requests through Cloudflare never have`)},
	},
	{
		name: "members in a cloudflare path rule",
		src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:2283"
  cloudflare {
    host   = "a"
    access = "app"
  }
  path "/api/" {
    cloudflare = "members"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:9:18", "Tailnet-only access on the Cloudflare door",
			`"members" needs a tailnet identity`)},
	},
	{
		name: "family on the tailnet door",
		src: `domain = "example.com"
tailnet {}
route "a" {
  backend = "http://127.0.0.1:2283"
  tailnet {
    access = "family"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:6:14", "Family sign-in on the tailnet door",
			"family sign-in is for the cloudflare and lan doors")},
	},
	{
		name: "family without an oidc block is a warning",
		src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:2283"
  cloudflare {
    host   = "a"
    access = "family"
  }
  path "/old/" {
    cloudflare = "family"
  }
}
`,
		// One warning for the route, not one per door block and path.
		want: []wantDiag{
			wantWarn("t.hcl:6:14", "Family route without sign-in",
				`route "a" (line 6) uses family access but there is no oidc block`, "fails closed",
				`acknowledge = ["family-without-sign-in"]`),
		},
		check: func(t *testing.T, cfg *Config) {
			if len(cfg.Warnings) != 1 {
				t.Errorf("Config.Warnings has %d entries, want 1: %v", len(cfg.Warnings), cfg.Warnings)
			}
			if got := cfg.Routes[0].Doors[Cloudflare].Access; got != Family {
				t.Errorf("cloudflare access = %v, want family", got)
			}
		},
	},
	{
		name: "groups without family access",
		src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:2283"
  cloudflare {
    host   = "a"
    access = "app"
    groups = ["family"]
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:7:14", "Groups without family access")},
	},
	{
		name: "non-loopback backend",
		src: `domain = "example.com"
route "nas" {
  backend = "http://192.168.1.10:5000"
  cloudflare {
    host   = "nas"
    access = "app"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:3:13", "Backend is not on loopback",
			`backend host "192.168.1.10" is not a loopback address`, `set allow_non_loopback = true in route "nas"`)},
	},
	{
		name: "non-loopback backend with allow_non_loopback",
		src: `domain = "example.com"
route "nas" {
  backend            = "http://192.168.1.10:5000"
  allow_non_loopback = true
  cloudflare {
    host   = "nas"
    access = "app"
  }
}
`,
		check: func(t *testing.T, cfg *Config) {
			r := cfg.Routes[0]
			if !r.AllowNonLoopback || r.Backend.URL == nil || r.Backend.URL.Host != "192.168.1.10:5000" {
				t.Errorf("route = %+v, backend %v; want an accepted non-loopback backend", r, r.Backend.URL)
			}
		},
	},
	{
		name: "loopback backends in every spelling",
		src: `domain = "example.com"
route "a" {
  backend = "http://LocalHost:1"
  cloudflare {
    host   = "a"
    access = "app"
  }
}
route "b" {
  backend = "https://[::1]:2/base/"
  cloudflare {
    host   = "b"
    access = "app"
  }
}
route "c" {
  backend = "http://[::ffff:127.0.0.1]:3"
  cloudflare {
    host   = "c"
    access = "app"
  }
}
route "d" {
  backend = "unix:///run/d/d.sock"
  cloudflare {
    host   = "d"
    access = "app"
  }
}
`,
		check: func(t *testing.T, cfg *Config) {
			want := []string{"http://LocalHost:1", "https://[::1]:2/base", "http://[::ffff:127.0.0.1]:3", "http://d.sock"}
			for i, r := range cfg.Routes {
				if got := r.Backend.URL.String(); got != want[i] {
					t.Errorf("route %s: backend URL %q, want %q", r.Name, got, want[i])
				}
			}
			if s := cfg.Routes[3].Backend.Socket; s != "/run/d/d.sock" {
				t.Errorf("unix socket = %q", s)
			}
		},
	},
	{
		name: "backend is not a URL",
		src: `domain = "example.com"
route "a" {
  backend = "127.0.0.1:2283"
  cloudflare {
    host   = "a"
    access = "app"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:3:13", "Invalid backend", `backend "127.0.0.1:2283" is not a URL`)},
	},
	{
		name: "backend with an unsupported scheme",
		src: `domain = "example.com"
route "a" {
  backend = "ftp://127.0.0.1:21"
  cloudflare {
    host   = "a"
    access = "app"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:3:13", "Invalid backend", `backend scheme "ftp" is not supported; use http://, https:// or unix://.`)},
	},
	{
		name: "backend with a bad port",
		src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:70000"
  cloudflare {
    host   = "a"
    access = "app"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:3:13", "Invalid port", `backend port "70000" must be a number from 1 to 65535.`)},
	},
	{
		name: "backend with port zero",
		src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:0"
  cloudflare {
    host   = "a"
    access = "app"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:3:13", "Invalid port", `backend port "0" must be a number from 1 to 65535.`)},
	},
	{
		name: "backend with a query",
		src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:1/?x=1"
  cloudflare {
    host   = "a"
    access = "app"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:3:13", "Invalid backend", "must be scheme://host:port with an optional path")},
	},
	{
		name: "unix backend with a relative path",
		src: `domain = "example.com"
route "a" {
  backend = "unix:run/a.sock"
  cloudflare {
    host   = "a"
    access = "app"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:3:13", "Invalid backend", "a unix socket backend needs an absolute path")},
	},
	{
		name: "null backend",
		src: `domain = "example.com"
route "a" {
  backend = null
  cloudflare {
    host   = "a"
    access = "app"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:3:13", "Wrong type for backend", "backend must be a string in double quotes, not null.")},
	},
	{
		name: "malformed CIDR in trusted_proxies",
		src: `domain = "example.com"
cloudflare {
  trusted_proxies = ["127.0.0.1/32", "10.0.0.0/33"]
}
`,
		want: []wantDiag{wantErr("t.hcl:3:21", "Invalid trusted proxy",
			`"10.0.0.0/33" in trusted_proxies is not an IP address or CIDR`)},
	},
	{
		name: "trusted proxy that is no address at all",
		src: `domain = "example.com"
cloudflare {
  trusted_proxies = ["localhost"]
}
`,
		want: []wantDiag{wantErr("t.hcl:3:21", "Invalid trusted proxy",
			`"localhost" in trusted_proxies is not an IP address or CIDR`)},
	},
	{
		name: "null in a string list",
		src: `domain = "example.com"
tailnet {
  admins = ["admin@example.com", null]
}
`,
		want: []wantDiag{wantErr("t.hcl:3:12", "Wrong type for admins", "without nulls")},
	},
	{
		name: "listen address without a port",
		src: `domain = "example.com"
cloudflare {
  listen = "127.0.0.1"
}
`,
		want: []wantDiag{wantErr("t.hcl:3:12", "Invalid listen address",
			`cloudflare.listen must be host:port like "127.0.0.1:8750", not "127.0.0.1".`)},
	},
	{
		name: "listen port out of range",
		src: `domain = "example.com"
cloudflare {
  listen = "127.0.0.1:99999"
}
`,
		want: []wantDiag{wantErr("t.hcl:3:12", "Invalid port",
			`cloudflare.listen: port "99999" must be a number from 1 to 65535.`)},
	},
	{
		name: "listen on a hostname",
		src: `domain = "example.com"
metrics {
  listen = "gatehouse.lan:9090"
}
`,
		want: []wantDiag{wantErr("t.hcl:3:12", "Invalid listen address",
			`metrics.listen: "gatehouse.lan" is not an IP address`)},
	},
	{
		name: "cloudflare.listen equal to metrics.listen",
		src: `domain = "example.com"
cloudflare {
  listen = "127.0.0.1:9000"
}
metrics {
  listen = "127.0.0.1:9000"
}
`,
		want: []wantDiag{wantErr("t.hcl:6:12", "Addresses collide",
			"metrics.listen (127.0.0.1:9000) uses the same address as cloudflare.listen")},
	},
	{
		name: "cloudflare.listen on localhost equal to metrics.listen",
		src: `domain = "example.com"
cloudflare {
  listen = "localhost:9000"
}
metrics {
  listen = "127.0.0.1:9000"
}
`,
		want: []wantDiag{wantErr("t.hcl:6:12", "Addresses collide",
			"metrics.listen (127.0.0.1:9000) uses the same address as cloudflare.listen")},
	},
	{
		name: "metrics on a wildcard over the default cloudflare.listen",
		src: `domain = "example.com"
metrics {
  listen = "0.0.0.0:8750"
}
`,
		want: []wantDiag{wantErr("t.hcl:3:12", "Addresses collide",
			"metrics.listen (0.0.0.0:8750) uses the same address as cloudflare.listen")},
	},
	{
		name: "metrics on another port is fine",
		src: `domain = "example.com"
metrics {
  listen = "127.0.0.1:9090"
}
`,
		check: func(t *testing.T, cfg *Config) {
			if cfg.Metrics == nil || cfg.Metrics.Listen != "127.0.0.1:9090" || cfg.Cloudflare.Listen != DefaultCloudflareListen {
				t.Errorf("metrics %+v, cloudflare %+v", cfg.Metrics, cfg.Cloudflare)
			}
		},
	},
	{
		name: "backend at cloudflare.listen",
		src: `domain = "example.com"
cloudflare {
  listen = "127.0.0.1:9000"
}
route "loop" {
  backend = "http://127.0.0.1:9000"
  cloudflare {
    host   = "loop"
    access = "app"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:5:1", "Addresses collide",
			`the backend of route "loop" (http://127.0.0.1:9000) is cloudflare.listen, so gatehouse would forward to itself`)},
	},
	{
		name: "backend under a wildcard cloudflare.listen",
		src: `domain = "example.com"
cloudflare {
  listen = "0.0.0.0:9000"
}
route "loop" {
  backend = "http://127.0.0.1:9000"
  cloudflare {
    host   = "loop"
    access = "app"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:5:1", "Addresses collide",
			`the backend of route "loop" (http://127.0.0.1:9000) is cloudflare.listen`)},
	},
	{
		name: "backend on localhost at cloudflare.listen on 127.0.0.1",
		src: `domain = "example.com"
route "loop" {
  backend = "http://localhost:8750"
  cloudflare {
    host   = "loop"
    access = "app"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:2:1", "Addresses collide",
			`the backend of route "loop" (http://localhost:8750) is cloudflare.listen`)},
	},
	{
		name: "backend on 127.0.0.1 at cloudflare.listen on localhost",
		src: `domain = "example.com"
cloudflare {
  listen = "localhost:9000"
}
route "loop" {
  backend = "http://127.0.0.1:9000"
  cloudflare {
    host   = "loop"
    access = "app"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:5:1", "Addresses collide",
			`the backend of route "loop" (http://127.0.0.1:9000) is cloudflare.listen`)},
	},
	{
		name: "backend at cloudflare.listen in another spelling",
		src: `domain = "example.com"
cloudflare {
  listen = "[0:0::1]:09000"
}
route "loop" {
  backend = "http://[::ffff:127.0.0.1]:9000"
  cloudflare {
    host   = "loop"
    access = "app"
  }
}
route "loop6" {
  backend = "http://[::1]:9000"
  cloudflare {
    host   = "loop6"
    access = "app"
  }
}
`,
		// ::ffff:127.0.0.1 is 127.0.0.1, not ::1: only loop6 collides.
		want: []wantDiag{wantErr("t.hcl:12:1", "Addresses collide",
			`the backend of route "loop6" (http://[::1]:9000) is cloudflare.listen`)},
	},
	{
		name: "backend at cloudflare.listen as an IPv4-mapped address",
		src: `domain = "example.com"
route "loop" {
  backend = "http://[::ffff:127.0.0.1]:8750"
  cloudflare {
    host   = "loop"
    access = "app"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:2:1", "Addresses collide",
			`the backend of route "loop" (http://[::ffff:127.0.0.1]:8750) is cloudflare.listen`)},
	},
	{
		name: "backend at metrics.listen",
		src: `domain = "example.com"
metrics {
  listen = "127.0.0.1:9090"
}
route "loop" {
  backend = "http://127.0.0.1:9090/metrics"
  cloudflare {
    host   = "loop"
    access = "app"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:5:1", "Addresses collide",
			`the backend of route "loop" (http://127.0.0.1:9090/metrics) is metrics.listen`)},
	},
	{
		name: "duplicate route name",
		src: `domain = "example.com"
tailnet {}
route "a" {
  backend = "http://127.0.0.1:1"
  tailnet {
    access = "admin"
  }
}
route "a" {
  backend = "http://127.0.0.1:2"
  tailnet {
    access = "admin"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:9:7", "Duplicate route name", `route "a" is already defined at line 3`)},
	},
	{
		name: "duplicate door block in a route",
		src: `domain = "example.com"
tailnet {}
route "a" {
  backend = "http://127.0.0.1:1"
  tailnet {
    access = "admin"
  }
  tailnet {
    access = "members"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:8:3", "Duplicate tailnet block", "route a already has a tailnet block at line 5")},
	},
	{
		name: "duplicate top-level block",
		src: `domain = "example.com"
cloudflare {
  listen = "127.0.0.1:9000"
}
cloudflare {
  listen = "127.0.0.1:9001"
}
`,
		want: []wantDiag{wantErr("t.hcl:5:1", "Duplicate cloudflare block", "The file already has a cloudflare block at line 2")},
	},
	{
		name: "path rule for a door the route does not have",
		src: `domain = "example.com"
tailnet {}
route "a" {
  backend = "http://127.0.0.1:1"
  tailnet {
    access = "admin"
  }
  path "/api/" {
    cloudflare = "app"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:9:18", "Path rule for a closed door",
			`route "a" has no cloudflare block, so a cloudflare rule for "/api/" has no effect`)},
	},
	{
		name: "path prefix that is not clean",
		src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:1"
  cloudflare {
    host   = "a"
    access = "app"
  }
  path "/api/../admin" {
    cloudflare = "closed"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:8:8", "Invalid path prefix", `path "/api/../admin" must be an absolute, clean prefix`)},
	},
	{
		name: "missing backend",
		src: `domain = "example.com"
tailnet {}
route "a" {
  tailnet {
    access = "admin"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:3:11", "Missing required argument", `The argument "backend" is required, but no definition was found.`)},
	},
	{
		name: "missing cloudflare host",
		src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:1"
  cloudflare {
    access = "app"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:4:3", "Missing host", `the cloudflare door of route "a" needs host = "<name>"`)},
	},
	{
		name: "invalid route name",
		src: `domain = "example.com"
tailnet {}
route "Immich" {
  backend = "http://127.0.0.1:1"
  tailnet {
    access = "admin"
  }
}
`,
		want: []wantDiag{wantErr("t.hcl:3:7", "Invalid route name", `route name "Immich" must be one DNS label`)},
	},
	{
		name: "invalid rate",
		src: `domain = "example.com"
limit {
  rate = "NaN"
}
`,
		want: []wantDiag{wantErr("t.hcl:3:10", "Invalid rate", `rate "NaN": "NaN" is not a positive number`)},
	},
	{
		name: "syntax error",
		src: `domain = "example.com"
route "a" {
  backend = = "http://127.0.0.1:1"
}
`,
		want: []wantDiag{wantErr("t.hcl:3:13", "Invalid expression", "Expected the start of an expression")},
	},
	{
		name: "unclosed block",
		src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:1"
`,
		want: []wantDiag{wantErr("t.hcl:2:11", "Unclosed configuration block", "There is no closing brace for this block")},
	},
}

func sevName(s hcl.DiagnosticSeverity) string {
	if s == hcl.DiagWarning {
		return "warning"
	}
	return "error"
}

func TestValidation(t *testing.T) {
	for _, tc := range validationCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, diags := Parse([]byte(tc.src), "t.hcl")
			used := make([]bool, len(diags))
			wantErrors := 0
			for _, w := range tc.want {
				if w.sev == hcl.DiagError {
					wantErrors++
				}
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
					t.Errorf("no diagnostic %q with detail containing %q; got:\n%s", prefix, w.detail, formatAll(diags))
				}
			}
			var errs int
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					errs++
				}
			}
			if errs != wantErrors {
				t.Errorf("%d errors, want %d:\n%s", errs, wantErrors, formatAll(diags))
			}
			if diags.HasErrors() != (cfg == nil) {
				t.Fatalf("Parse returned Config %v with errors=%v; want a nil Config exactly when there are errors", cfg != nil, diags.HasErrors())
			}
			if cfg == nil {
				return
			}
			// A config that loads carries its warnings, and compiles.
			var warns int
			for _, d := range diags {
				if d.Severity == hcl.DiagWarning {
					warns++
				}
			}
			if len(cfg.Warnings) != warns {
				t.Errorf("Config.Warnings has %d entries, Parse returned %d warnings", len(cfg.Warnings), warns)
			}
			_ = Compile(cfg)
			if tc.check != nil {
				tc.check(t, cfg)
			}
		})
	}
}

func formatAll(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		b.WriteString("    " + FormatDiagnostic(d) + "\n")
	}
	return b.String()
}

// TestAllErrorsCollected: one file with three unrelated mistakes reports
// all three, in one go, and no Config.
func TestAllErrorsCollected(t *testing.T) {
	src := `domain = "example.com"
tailnet {}
route "a" {
  backend = "http://10.0.0.5:80"
  tailnet {
    access = "admin"
  }
}
route "b" {
  backend = "http://127.0.0.1:2"
  tailnet {
    access = "root"
  }
}
route "a" {
  backend = "http://127.0.0.1:3"
  tailnet {
    host   = "a2"
    access = "admin"
  }
}
`
	cfg, _, diags := Parse([]byte(src), "t.hcl")
	if cfg != nil {
		t.Errorf("Parse returned a Config despite errors")
	}
	var got []string
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			got = append(got, FormatDiagnostic(d))
		}
	}
	want := []string{
		"t.hcl:4:13: error: Backend is not on loopback",
		"t.hcl:12:14: error: Unknown access level",
		"t.hcl:15:7: error: Duplicate route name",
	}
	if len(got) != len(want) {
		t.Fatalf("%d errors, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
}

// TestWriteDiagnostics: the rendering for `gatehouse check` shows the line
// and puts a caret under the offending expression, errors before warnings.
func TestWriteDiagnostics(t *testing.T) {
	src := `domain = "example.com"
tailnet {}
route "a" {
  backend = "http://127.0.0.1:1"
  cloudflare {
    host   = "a"
    access = "family"
  }
  tailnet {
    access = "everyone"
  }
}
`
	_, f, diags := Parse([]byte(src), "t.hcl")
	var b bytes.Buffer
	WriteDiagnostics(&b, diags, f)
	want := `t.hcl:10:14: error: Unknown access level: "everyone" is not an access level; use one of admin, members, family, app, closed.
        access = "everyone"
                 ^^^^^^^^^^
t.hcl:7:14: warning: Family route without sign-in:`
	if !strings.HasPrefix(b.String(), want) {
		t.Errorf("WriteDiagnostics wrote\n%s\nwant it to start with\n%s", b.String(), want)
	}
}

func TestLoad(t *testing.T) {
	cfg, _, diags := Load("testdata/does-not-exist.hcl")
	if cfg != nil || !diags.HasErrors() || diags[0].Summary != "Cannot read route table" {
		t.Errorf("Load of a missing file: cfg %v, diags %v", cfg, diags)
	}
}

// A panic while reading becomes an error diagnostic: a reload must never
// crash the gateway (invariant 5, docs/ARCHITECTURE.md).
func TestParseRecoversFromPanics(t *testing.T) {
	cfg, _, diags := parseWithPanic()
	if cfg != nil || !diags.HasErrors() || !strings.Contains(diags.Error(), "Internal error reading the route table") {
		t.Fatalf("cfg %v, diags %v", cfg, diags)
	}
}
