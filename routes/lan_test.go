package routes

import (
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
)

const lanBase = `domain = "example.com"
lan {
  listen         = ["192.168.1.10:443"]
  dns_token_file = "token"
}
`

func TestLANBlockDefaults(t *testing.T) {
	cfg, _, diags := Parse([]byte(lanBase+`
route "photos" {
  backend = "http://127.0.0.1:2283"
  max_body = "100MB"
  cloudflare {
    host   = "photos"
    access = "app"
  }
  lan {
    access   = "app"
    max_body = "20GiB"
  }
}
route "radarr" {
  backend = "http://127.0.0.1:7878"
  lan {
    host   = "radarr"
    access = "app"
  }
}
route "apex" {
  backend = "http://127.0.0.1:7879"
  lan {
    host   = "example.com"
    access = "app"
  }
}
route "deep" {
  backend = "http://127.0.0.1:7880"
  lan {
    host   = "a.b.example.com"
    access = "app"
  }
}
`), "/etc/gatehouse/routes.hcl")
	if diags.HasErrors() {
		t.Fatal(formatAll(diags))
	}
	l := cfg.LAN
	if l == nil || l.StateDir != "/etc/gatehouse/lan" || l.DNSTokenFile != "/etc/gatehouse/token" ||
		l.ACMECA != LetsEncrypt || !l.Wildcard {
		t.Fatalf("lan = %+v", l)
	}
	if !slices.Contains(l.Networks, netip.MustParsePrefix("192.168.0.0/16")) || !slices.Contains(l.Networks, netip.MustParsePrefix("fc00::/7")) {
		t.Errorf("default networks %v", l.Networks)
	}
	photos := cfg.Routes[0]
	if dr := photos.Doors[LAN]; dr.Host != "photos.example.com" {
		t.Errorf("lan host %q, want the cloudflare host", dr.Host)
	}
	if photos.MaxBodyOn(LAN) != 20<<30 || photos.MaxBodyOn(Cloudflare) != 100e6 {
		t.Errorf("max body lan %d cloudflare %d", photos.MaxBodyOn(LAN), photos.MaxBodyOn(Cloudflare))
	}
	if got := LANNames(cfg); strings.Join(got, " ") != "*.example.com example.com a.b.example.com" {
		t.Errorf("LANNames = %v", got)
	}
	cfg.LAN.Wildcard = false
	if got := LANNames(cfg); strings.Join(got, " ") != "photos.example.com radarr.example.com example.com a.b.example.com" {
		t.Errorf("LANNames per name = %v", got)
	}
	tab := Compile(cfg)
	if m := tab.Match(LAN, "radarr.example.com", "/"); m.Route == nil || m.Route.Name != "radarr" {
		t.Errorf("radarr on the LAN: %+v", m)
	}
	if m := tab.Match(Cloudflare, "radarr.example.com", "/"); m.Route != nil {
		t.Errorf("a LAN-only route answers through cloudflare: %+v", m)
	}
}

// The LAN door's diagnostics run in TestValidation.
func init() {
	validationCases = append(validationCases, []validationCase{
		{
			name: "tailnet access on the LAN door",
			src: lanBase + `route "a" {
  backend = "http://127.0.0.1:2283"
  lan {
    host   = "a"
    access = "admin"
  }
}
`,
			want: []wantDiag{wantErr("t.hcl:10:14", "Tailnet-only access on the LAN door", "groups for admin-only services")},
		},
		{
			name: "lan host needed without a cloudflare block",
			src: lanBase + `route "a" {
  backend = "http://127.0.0.1:2283"
  lan {
    access = "app"
  }
}
`,
			want: []wantDiag{wantErr("t.hcl:8:3", "Missing host", "no cloudflare block")},
		},
		{
			name: "bad network and CA",
			src: `domain = "example.com"
lan {
  listen         = ["192.168.1.10:443"]
  dns_token_file = "token"
  networks       = ["home"]
  acme_ca        = "http://ca.example.com/dir"
  certificates   = "many"
}
`,
			want: []wantDiag{
				wantErr("t.hcl:5:20", "Invalid network", `"home"`),
				wantErr("t.hcl:6:20", "Invalid acme_ca", "ACME directory URL"),
				wantErr("t.hcl:7:20", "Invalid certificates", "per_name"),
			},
		},
		{
			name: "lan listen collides with the cloudflare door",
			src: `domain = "example.com"
cloudflare {
  listen = "127.0.0.1:8443"
}
lan {
  listen         = ["127.0.0.1:8443"]
  dns_token_file = "token"
}
`,
			want: []wantDiag{wantErr("t.hcl:6:20", "Addresses collide", "cloudflare.listen")},
		},
		{
			name: "lan routes without a lan block",
			src: `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:2283"
  lan {
    host   = "a"
    access = "app"
  }
}
`,
			want: []wantDiag{wantWarn("t.hcl:2:1", "LAN routes without a lan block", "LAN door is off")},
		},
		{
			name: "path rule for the lan door",
			src: lanBase + `route "a" {
  backend = "http://127.0.0.1:2283"
  cloudflare {
    host   = "a"
    access = "app"
  }
  path "/admin" {
    lan = "closed"
  }
}
`,
			want: []wantDiag{wantErr("t.hcl:13:11", "Path rule for a closed door", "no lan block")},
		},
	}...)
}

// The routes.hcl example of docs/lan.md is one `gatehouse check` accepts,
// and means what the page says.
func TestLANDocExampleChecks(t *testing.T) {
	doc, err := os.ReadFile("../docs/lan.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```hcl\n")
	if ok {
		block, _, ok = strings.Cut(block, "```")
	}
	if !ok {
		t.Fatal("docs/lan.md has no hcl block")
	}
	cfg, _, diags := Parse([]byte(`domain = "example.com"`+"\n"+block), "lan.md")
	if cfg == nil {
		t.Fatalf("docs/lan.md's example:\n%s", formatAll(diags))
	}
	immich, radarr := cfg.Routes[0], cfg.Routes[1]
	if immich.Doors[LAN].Host != "photos.example.com" || immich.MaxBodyOn(LAN) != 20<<30 || immich.MaxBodyOn(Cloudflare) != 100e6 {
		t.Errorf("immich on the LAN: %+v", immich.Doors[LAN])
	}
	if radarr.Doors[Cloudflare] != nil || radarr.Doors[LAN].Access != Family || radarr.Doors[LAN].Groups[0] != "admins" {
		t.Errorf("radarr on the LAN: %+v", radarr.Doors[LAN])
	}
}
