package routes

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func matrixOf(t *testing.T, cfg *Config, o MatrixOptions) string {
	t.Helper()
	var b strings.Builder
	if err := WriteMatrix(&b, cfg, o); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// `gatehouse routes` on the shipped table fits 100 columns, with and
// without -v; a preset is one line counting its paths unless -v lists
// them; every route shows the limit in force.
func TestWriteMatrixReadable(t *testing.T) {
	cfg := loadShipped(t)
	short, long := matrixOf(t, cfg, MatrixOptions{}), matrixOf(t, cfg, MatrixOptions{Verbose: true})
	for name, out := range map[string]string{"default": short, "-v": long} {
		for _, l := range strings.Split(out, "\n") {
			if n := utf8.RuneCountInString(l); n > 100 {
				t.Errorf("%s: a line of %d columns: %q", name, n, l)
			}
		}
		if got := strings.Count(out, "\n  limit "); got != len(cfg.Routes) {
			t.Errorf("%s: %d limit lines for %d routes", name, got, len(cfg.Routes))
		}
	}
	checkMatrixRows(t, cfg, "/System/Restart cloudflare closed; lan closed (jellyfin preset)") // -v lists preset paths
	if strings.Contains(short, "/System/Restart") || !strings.Contains(short, "\n  preset jellyfin  47 paths: cloudflare 29 app, 18 closed; lan 29 app, 18 closed\n") {
		t.Errorf("the jellyfin preset is not one line by default:\n%s", short)
	}
	for _, want := range []string{
		"\n  limit 50/s, burst 200; 64 at once (the top-level limit)\n",
		"\n  /api/auth/login  limit 10/min, burst 5; ban 1h after 10 failures (401, 403) in 15m\n",
		"\n  /admin                   cloudflare closed; lan closed\n",
	} {
		if !strings.Contains(short, want) {
			t.Errorf("matrix lacks %q:\n%s", want, short)
		}
	}
}

// -route NAME shows that route alone, with every path; an unknown name is
// an error that lists the routes.
func TestWriteMatrixOneRoute(t *testing.T) {
	cfg := loadShipped(t)
	out := matrixOf(t, cfg, MatrixOptions{Route: "jellyfin"})
	if strings.Contains(out, "immich") || !strings.Contains(out, "/System/Restart") || !strings.HasPrefix(strings.Split(out, "\n")[1], "jellyfin ") {
		t.Errorf("-route jellyfin:\n%s", out)
	}
	var b strings.Builder
	err := WriteMatrix(&b, cfg, MatrixOptions{Route: "jelyfin"})
	if err == nil || !strings.Contains(err.Error(), `no route "jelyfin"`) || !strings.Contains(err.Error(), "jellyfin") {
		t.Errorf("-route jelyfin: %v", err)
	}
}

// The limit shown is the one in force: the route's block over the top
// level's, bursts filled the way the limiter fills them.
func TestRouteLimitShown(t *testing.T) {
	cfg, _, diags := Parse([]byte(`domain = "example.com"
limit {
  rate       = "50/s"
  burst      = 200
  concurrent = 64
}
route "seerr" {
  backend = "http://127.0.0.1:5055"
  cloudflare {
    host   = "request"
    access = "app"
  }
  limit {
    total_rate = "20/s"
  }
  path "/login" {
    limit {
      rate = "6/min"
    }
  }
}
route "open" {
  backend = "http://127.0.0.1:5056"
  cloudflare {
    host   = "open"
    access = "app"
  }
}
`), "t.hcl")
	if cfg == nil {
		t.Fatal(diags)
	}
	l := cfg.Routes[0].RouteLimit(cfg.Limit)
	if l == nil || l.Rate != 50 || l.Burst != 200 || l.Concurrent != 64 || l.TotalRate != 20 || l.TotalBurst != 20 {
		t.Fatalf("RouteLimit = %+v", l)
	}
	out := matrixOf(t, cfg, MatrixOptions{})
	for _, want := range []string{
		"\n  limit 50/s, burst 200; 64 at once; all clients 20/s, burst 20\n",
		"\n  /login  limit 6/min, burst 1\n",
		"\n  limit 50/s, burst 200; 64 at once (the top-level limit)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("matrix lacks %q:\n%s", want, out)
		}
	}
	cfg.Limit = nil
	if l := cfg.Routes[1].RouteLimit(nil); l != nil {
		t.Errorf("no limit anywhere: %+v", l)
	}
}

// Family routes without an oidc block are one warning naming them all;
// `acknowledge` silences a warning by name (and only that one), counted in
// the summary; an unknown name is an error that lists the names.
func TestAcknowledgeWarnings(t *testing.T) {
	const routes = `
route "a" {
  backend = "http://127.0.0.1:1001"
  cloudflare {
    host   = "a"
    access = "family"
  }
}
route "b" {
  backend = "http://127.0.0.1:1002"
  cloudflare {
    host   = "b"
    access = "family"
  }
}
route "c" {
  backend = "http://127.0.0.1:1003"
  cloudflare {
    host   = "c"
    access = "family"
  }
}
route "nowhere" {
  backend = "http://127.0.0.1:1004"
}
`
	cfg, _, diags := Parse([]byte(`domain = "example.com"`+routes), "t.hcl")
	if cfg == nil {
		t.Fatal(diags)
	}
	if len(cfg.Warnings) != 2 {
		t.Fatalf("warnings: %v", cfg.Warnings)
	}
	family := FormatDiagnostic(cfg.Warnings[1])
	if WarningCode(cfg.Warnings[0]) == WarnFamilyWithoutSignIn {
		family = FormatDiagnostic(cfg.Warnings[0])
	}
	if !strings.Contains(family, `routes "a" (line 6), "b" (line 13) and "c" (line 20) use family access`) {
		t.Errorf("the family warning: %s", family)
	}

	cfg, _, diags = Parse([]byte(`domain = "example.com"
acknowledge = ["family-without-sign-in"]`+routes), "t.hcl")
	if cfg == nil {
		t.Fatal(diags)
	}
	if len(cfg.Warnings) != 1 || WarningCode(cfg.Warnings[0]) != WarnRouteWithoutDoor || cfg.Acknowledged != 1 {
		t.Fatalf("acknowledged: warnings %v, acknowledged %d", cfg.Warnings, cfg.Acknowledged)
	}
	if got := Summary(cfg); !strings.HasSuffix(got, "4 routes (0 on the tailnet, 3 through Cloudflare, 0 on the LAN), 0 path rules, 1 warning (and 1 acknowledged)") {
		t.Errorf("Summary = %q", got)
	}

	cfg, _, diags = Parse([]byte(`domain = "example.com"
acknowledge = ["family-without-signin"]`+routes), "t.hcl")
	if cfg != nil || !strings.Contains(diags.Error(), `"family-without-signin" in acknowledge is not the name of a warning; the names are "family-without-sign-in"`) {
		t.Errorf("unknown name: %v", diags)
	}
}
