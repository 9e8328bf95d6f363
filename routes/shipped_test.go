package routes

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

const shippedFile = "../routes.hcl"

func loadShipped(t testing.TB) *Config {
	t.Helper()
	cfg, _, diags := Load(shippedFile)
	if diags.HasErrors() || cfg == nil {
		t.Fatalf("%s does not load:\n%s", shippedFile, formatAll(diags))
	}
	return cfg
}

// probe is one request and what the shipped table must answer. The zero
// access (closed) means the zero Match: the same 404 as an unknown host.
type probe struct {
	path string
	want Access
}

// shippedRoute is one row of the accessibility matrix the shipped
// routes.hcl promises.
type shippedRoute struct {
	name    string
	backend string
	tailnet Access // closed: no tailnet door
	cfHost  string // "": no cloudflare door
	cfRoot  Access // the cloudflare door's own access (keycloak: closed)
	// cloudflare probes beyond "/" (host cfHost)
	cfPaths []probe
	// lanHost: "" the cloudflare host (the LAN door answers the same
	// public names, with the same probes); lanRoot the LAN door's own
	// access, lanGroups the groups it asks for.
	lanHost   string
	lanRoot   Access
	lanGroups []string
}

// shippedMatrix is the shipped matrix, written out. Every route of
// ../routes.hcl must be here, and nothing else.
var shippedMatrix = []shippedRoute{
	{name: "immich", lanRoot: Family, backend: "127.0.0.1:2283", tailnet: Members, cfHost: "photos.example.com", cfRoot: Family,
		cfPaths: []probe{
			{path: "/photos/123", want: Family},
			{path: "/api/assets", want: App},
			{path: "/api", want: App},
			{path: "/API/server/ping", want: App},
			{path: "/apix", want: Family},
			{path: "/.well-known/immich", want: App},
			{path: "/share/abc", want: App},
			{path: "/albums", want: Family},
			{path: "/x/../api/assets", want: App},
			{path: "/api/auth/admin-sign-up", want: Closed},
		}},
	{name: "nextcloud", lanRoot: Family, backend: "127.0.0.1:8080", tailnet: Members, cfHost: "files.example.com", cfRoot: Family,
		cfPaths: []probe{
			{path: "/apps/files/", want: Family},
			{path: "/remote.php/dav/files/me/x.jpg", want: App},
			{path: "/ocs/v2.php/cloud/capabilities", want: App},
			{path: "/index.php/login", want: Family},
			{path: "/index.php/login/v2/poll", want: App},
			{path: "/status.php", want: App},
			{path: "/index.php/apps/files/", want: Family},
			{path: "/index.php/login/v2/flow/abc", want: Family},
			{path: "/index.php/204", want: App},
		}},
	{name: "vaultwarden", lanRoot: App, backend: "127.0.0.1:8000", tailnet: Members, cfHost: "passwords.example.com", cfRoot: App,
		cfPaths: []probe{
			{path: "/api/sync", want: App},
			{path: "/identity/connect/token", want: App},
			{path: "/admin", want: Closed},
			{path: "/admin/", want: Closed},
			{path: "/admin/users/overview", want: Closed},
			{path: "/ADMIN", want: Closed},
			{path: "/Admin/diagnostics", want: Closed},
			{path: "/admin;jsessionid=1", want: Closed},
			{path: "//admin", want: Closed},
			{path: "/./admin", want: Closed},
			{path: "/x/../admin", want: Closed},
			{path: `\admin`, want: Closed},
			{path: "/administrator", want: App},
		}},
	{name: "jellyfin", lanRoot: Family, backend: "127.0.0.1:8096", tailnet: Members, cfHost: "watch.example.com", cfRoot: Family,
		cfPaths: []probe{
			{path: "/web/index.html", want: Family},
			{path: "/Users/AuthenticateByName", want: App},
			{path: "/Items/abc/Images/Primary", want: App},
			{path: "/Videos/abc/stream.mkv", want: App},
			{path: "/Sessions/Capabilities/Full", want: App},
			{path: "/socket", want: App},
			{path: "/socketx", want: Family},
			{path: "/System/Info/Public", want: App},
			{path: "/web/", want: Family},
			{path: "/", want: Family},
			{path: "/System/Restart", want: Closed},
			{path: "/system/restart/", want: Closed},
			{path: "/System/Info", want: App},
			{path: "/System/Ping", want: Family},
			{path: "/Startup/Configuration", want: Closed},
			{path: "/UserImage", want: App},
		}},
	{name: "jellyseerr", lanRoot: Family, backend: "127.0.0.1:5055", tailnet: Admin, cfHost: "request.example.com", cfRoot: Family,
		cfPaths: []probe{{path: "/api/v1/request", want: Family}}},
	{name: "audiobookshelf", lanRoot: Family, backend: "127.0.0.1:13378", tailnet: Members, cfHost: "audiobooks.example.com", cfRoot: Family,
		cfPaths: []probe{
			{path: "/api/libraries", want: App},
			{path: "/login", want: App},
			{path: "/audiobookshelf/", want: Family},
			{path: "/auth/refresh", want: App},
			{path: "/audiobookshelf/share/abc", want: Family},
			{path: "/init", want: Closed},
		}},
	{name: "navidrome", lanRoot: Family, backend: "127.0.0.1:4533", tailnet: Members, cfHost: "music.example.com", cfRoot: Family,
		cfPaths: []probe{
			{path: "/rest/ping.view", want: App},
			{path: "/app/", want: Family},
		}},
	{name: "radarr", lanHost: "radarr.example.com", lanRoot: Family, lanGroups: []string{"admins"}, backend: "127.0.0.1:7878", tailnet: Admin},
	{name: "sonarr", lanHost: "sonarr.example.com", lanRoot: Family, lanGroups: []string{"admins"}, backend: "127.0.0.1:8989", tailnet: Admin},
	{name: "bazarr", lanHost: "bazarr.example.com", lanRoot: Family, lanGroups: []string{"admins"}, backend: "127.0.0.1:6767", tailnet: Admin},
	{name: "prowlarr", lanHost: "prowlarr.example.com", lanRoot: Family, lanGroups: []string{"admins"}, backend: "127.0.0.1:9696", tailnet: Admin},
	{name: "deluge", lanHost: "deluge.example.com", lanRoot: Family, lanGroups: []string{"admins"}, backend: "127.0.0.1:8112", tailnet: Admin},
	{name: "radicale", lanHost: "calendar.example.com", lanRoot: Family, backend: "127.0.0.1:5232", tailnet: Members},
	{name: "microbin", lanHost: "microbin.example.com", lanRoot: Family, lanGroups: []string{"admins"}, backend: "127.0.0.1:8084", tailnet: Admin},
	{name: "keycloak", lanRoot: Closed, backend: "127.0.0.1:8180", tailnet: Admin, cfHost: "auth.example.com", cfRoot: Closed,
		cfPaths: []probe{
			{path: "/realms/home/protocol/openid-connect/auth", want: App},
			{path: "/realms/home/.well-known/openid-configuration", want: App},
			{path: "/resources/abc/login/keycloak/css/login.css", want: App},
			{path: "/robots.txt", want: App},
			{path: "/admin/", want: Closed},
			{path: "/admin/master/console/", want: Closed},
			{path: "/realms/../admin/", want: Closed},
			{path: "/metrics", want: Closed},
			{path: "/health", want: Closed},
			{path: "/realmsx", want: Closed},
			{path: "/realms/master/protocol/openid-connect/auth", want: Closed},
			{path: "/realms/Master/account/", want: Closed},
			{path: "/realms/homex/", want: Closed},
		}},
}

func TestShippedParses(t *testing.T) {
	cfg, _, diags := Load(shippedFile)
	if diags.HasErrors() {
		t.Fatalf("%s:\n%s", shippedFile, formatAll(diags))
	}
	// The only warning is the family routes waiting for an oidc block: one
	// warning naming every family route, none once there is an oidc block.
	for _, d := range diags {
		if d.Severity == hcl.DiagWarning && WarningCode(d) != WarnFamilyWithoutSignIn {
			t.Errorf("unexpected warning: %s", FormatDiagnostic(d))
		}
	}
	wantWarnings := 0
	if cfg.OIDC == nil {
		wantWarnings = 1
		for _, r := range cfg.Routes {
			if (r.UsesAccess(Cloudflare, Family) || r.UsesAccess(LAN, Family)) && !strings.Contains(FormatDiagnostic(cfg.Warnings[0]), fmt.Sprintf("%q", r.Name)) {
				t.Errorf("the warning does not name %s: %s", r.Name, FormatDiagnostic(cfg.Warnings[0]))
			}
		}
	}
	if len(cfg.Warnings) != wantWarnings {
		t.Errorf("%d warnings, want %d:\n%s", len(cfg.Warnings), wantWarnings, formatAll(cfg.Warnings))
	}
	if cfg.Domain != "example.com" || cfg.Cloudflare.Listen != "127.0.0.1:8750" || cfg.Tailnet == nil {
		t.Errorf("domain %q, cloudflare %+v, tailnet %+v", cfg.Domain, cfg.Cloudflare, cfg.Tailnet)
	}
}

func TestShippedMatrix(t *testing.T) {
	cfg := loadShipped(t)
	tab := Compile(cfg)

	byName := map[string]*Route{}
	for _, r := range cfg.Routes {
		byName[r.Name] = r
	}
	if len(cfg.Routes) != len(shippedMatrix) {
		t.Errorf("%s has %d routes, the matrix %d", shippedFile, len(cfg.Routes), len(shippedMatrix))
	}
	cfHosts := map[string]bool{}
	for _, row := range shippedMatrix {
		t.Run(row.name, func(t *testing.T) {
			r := byName[row.name]
			if r == nil {
				t.Fatalf("no route %q", row.name)
			}
			checkShippedLAN(t, tab, r, row)
			if r.Backend.URL == nil || r.Backend.URL.Scheme != "http" || r.Backend.URL.Host != row.backend {
				t.Errorf("backend %q, want http://%s", r.Backend.Raw, row.backend)
			}

			// Tailnet: the route's own name, in any MagicDNS spelling; path
			// rules in the shipped file never change tailnet access.
			for _, host := range []string{row.name, row.name + ".tail1234.ts.net", strings.ToUpper(row.name) + ":443"} {
				for _, p := range []string{"/", "/admin/", "/api/x"} {
					checkMatch(t, tab, Tailnet, host, p, row.name, row.tailnet)
				}
			}

			// Cloudflare: only the route's public host, and never its
			// tailnet name.
			checkMatch(t, tab, Cloudflare, row.name, "/", row.name, Closed)
			checkMatch(t, tab, Cloudflare, row.name+".example.com", "/", row.name, Closed)
			if row.cfHost == "" {
				if r.Doors[Cloudflare] != nil {
					t.Errorf("route has a cloudflare door (%s), the matrix says none", r.Doors[Cloudflare].Host)
				}
				return
			}
			cfHosts[row.cfHost] = true
			// A cloudflare host on the tailnet door is not this route.
			checkMatch(t, tab, Tailnet, row.cfHost, "/", row.name, Closed)
			checkMatch(t, tab, Cloudflare, row.cfHost, "/", row.name, row.cfRoot)
			for _, p := range row.cfPaths {
				checkMatch(t, tab, Cloudflare, row.cfHost, p.path, row.name, p.want)
				checkMatch(t, tab, Cloudflare, strings.ToUpper(row.cfHost)+".:443", p.path, row.name, p.want)
			}
		})
	}
	for _, r := range cfg.Routes {
		if dr := r.Doors[Cloudflare]; dr != nil && !cfHosts[dr.Host] {
			t.Errorf("route %s answers on cloudflare host %s, which the matrix does not list", r.Name, dr.Host)
		}
	}
}

// checkShippedLAN: every route has a LAN door, on its cloudflare host with
// the cloudflare door's answers, or on a host of its own.
func checkShippedLAN(t *testing.T, tab *Table, r *Route, row shippedRoute) {
	t.Helper()
	dr := r.Doors[LAN]
	if dr == nil {
		t.Fatalf("route has no lan door; every shipped route says what it is at home")
	}
	host := row.lanHost
	if host == "" {
		host = row.cfHost
	}
	if dr.Host != host || dr.Access != row.lanRoot || strings.Join(dr.Groups, ",") != strings.Join(row.lanGroups, ",") {
		t.Errorf("lan door %s %v %v, want %s %v %v", dr.Host, dr.Access, dr.Groups, host, row.lanRoot, row.lanGroups)
	}
	// The tailnet name is not a LAN host.
	checkMatch(t, tab, LAN, row.name, "/", row.name, Closed)
	checkMatch(t, tab, LAN, host, "/", row.name, row.lanRoot)
	if row.lanHost == "" {
		for _, p := range row.cfPaths {
			checkMatch(t, tab, LAN, host, p.path, row.name, p.want)
		}
	}
}

// checkMatch asserts that door/host/path reaches route with access, or, for
// Closed, that it gets the zero Match.
func checkMatch(t *testing.T, tab *Table, door Door, host, p, route string, want Access) {
	t.Helper()
	m := tab.Match(door, host, CleanPath(p))
	if want == Closed {
		if m != (Match{}) {
			t.Errorf("%v %s%s: reaches %s as %v, want the zero Match", door, host, p, m.Route.Name, m.Access)
		}
		return
	}
	if m.Route == nil {
		t.Errorf("%v %s%s: zero Match, want %s as %v", door, host, p, route, want)
		return
	}
	if m.Route.Name != route || m.Access != want {
		t.Errorf("%v %s%s: %s as %v, want %s as %v", door, host, p, m.Route.Name, m.Access, route, want)
	}
}

func TestWriteMatrix(t *testing.T) {
	cfg := loadShipped(t)
	var b bytes.Buffer
	if err := WriteMatrix(&b, cfg, MatrixOptions{Verbose: true}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(out, "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "ROUTE BACKEND TAILNET CLOUDFLARE" {
		t.Errorf("header = %q", lines[0])
	}
	rows := map[string][]string{}
	lanLines := map[string]string{}
	last := ""
	for _, l := range lines[1:] {
		// Route rows start at the margin; their limit and paths are indented.
		if f := strings.Fields(l); len(f) > 0 && !strings.HasPrefix(l, " ") && strings.HasPrefix(f[1], "http") {
			rows[f[0]] = f
			last = f[0]
		} else if strings.HasPrefix(l, "  lan ") {
			lanLines[last] = l
		}
	}
	for _, row := range shippedMatrix {
		want := []string{row.name, "http://" + row.backend, row.name, row.tailnet.String()}
		if row.cfHost != "" {
			want = append(want, row.cfHost, row.cfRoot.String())
		} else {
			want = append(want, "—")
		}
		if got := rows[row.name]; strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("matrix row %q, want %q", strings.Join(got, " "), strings.Join(want, " "))
		}
		// The LAN door is the line right below the row.
		lanHost := row.lanHost
		if lanHost == "" {
			lanHost = "the cloudflare host,"
		}
		wantLAN := "  lan " + lanHost + " " + row.lanRoot.String()
		if len(row.lanGroups) > 0 {
			wantLAN += " (" + strings.Join(row.lanGroups, ", ") + ")"
		}
		if row.name == "immich" {
			wantLAN += " max_body 20GiB"
		}
		if got := lanLines[row.name]; got != wantLAN {
			t.Errorf("lan line of %s %q, want %q", row.name, got, wantLAN)
		}
	}
	if len(rows) != len(shippedMatrix) {
		t.Errorf("%d route rows, want %d:\n%s", len(rows), len(shippedMatrix), out)
	}
	// Path rules follow their route on indented rows.
	checkMatrixRows(t, cfg,
		"/api/ cloudflare app; lan app (immich preset)",
		"/rest/ cloudflare app; lan app (navidrome preset)",
		"/admin cloudflare closed; lan closed",
		"/realms/home/ cloudflare app; lan app",
		"/System/Restart cloudflare closed; lan closed (jellyfin preset)",
		"/api/auth/admin-sign-up cloudflare closed; lan closed (immich preset)",
		"/index.php/login/v2/flow cloudflare family; lan family (nextcloud preset)",
		"/robots.txt cloudflare app; lan app",
	)
	// The vaultwarden row is followed by its limit, then its /admin rule.
	for i, l := range lines {
		if strings.HasPrefix(l, "vaultwarden ") && (!strings.HasPrefix(lines[i+1], "  lan ") || !strings.HasPrefix(lines[i+2], "  limit 50/s, burst 200; 64 at once") ||
			!strings.HasPrefix(lines[i+3], "  /admin ")) {
			t.Errorf("lines after vaultwarden are %q", lines[i+1:i+4])
		}
	}
}

func TestSummary(t *testing.T) {
	cfg := loadShipped(t)
	paths := 0
	for _, r := range cfg.Routes {
		paths += len(r.Paths)
	}
	// 6 written in the file (immich's login limit, vaultwarden's two,
	// keycloak's three), the rest from the presets the file names.
	wantPaths := 6
	for _, r := range cfg.Routes {
		for _, name := range r.Presets {
			wantPaths += len(Presets[name].Paths)
		}
	}
	if paths != wantPaths || wantPaths != 99 {
		t.Errorf("%d path rules in %s, want %d (99)", paths, shippedFile, wantPaths)
	}
	got := Summary(cfg)
	want := fmt.Sprintf("../routes.hcl: ok — 15 routes (15 on the tailnet, 8 through Cloudflare, 15 on the LAN), 99 path rules, %s", Count(len(cfg.Warnings), "warning"))
	if got != want {
		t.Errorf("Summary = %q\nwant      %q", got, want)
	}
}
