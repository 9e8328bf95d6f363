package dashboard

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"gatehouse/auth"
	"gatehouse/proxy"
	"gatehouse/ratelimit"
	"gatehouse/routes"
)

type peer auth.PeerRecord

func (p *peer) LookupPeer(context.Context) (*auth.PeerRecord, error) {
	r := auth.PeerRecord(*p)
	return &r, nil
}

const table = `domain = "example.com"
tailnet {
  hostname = "gatehouse"
  admins   = ["admin@example.com"]
}
route "photos" {
  backend     = "http://127.0.0.1:2342"
  description = "Family photos"
  icon        = "📷"
  preset      = "immich"
  cloudflare {
    host   = "photos"
    access = "app"
  }
  tailnet {
    access = "members"
  }
}
`

func newDash(t *testing.T) (*Dashboard, *Refusals, *ratelimit.Registry) {
	t.Helper()
	cfg, _, diags := routes.Parse([]byte(table), "routes.hcl")
	if cfg == nil {
		t.Fatal(diags)
	}
	tbl := routes.Compile(cfg)
	refusals, reg := NewRefusals(5), ratelimit.NewRegistry(100)
	reloads := NewReloads(5)
	reloads.Add(Reload{At: time.Now(), Why: "file changed", Diagnostics: []string{"routes.hcl:3:1: Unsupported argument; bogus"}})
	d := New(Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Table: func() *routes.Table { return tbl },
		Refusals: refusals, Reloads: reloads, Limits: reg, Started: time.Now()})
	return d, refusals, reg
}

func ask(d *Dashboard, p *peer, method, target string, form url.Values, hdr map[string]string) *httptest.ResponseRecorder {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, "https://gatehouse.tail.ts.net"+target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	if p != nil {
		r = r.WithContext(auth.WithPeerLookup(r.Context(), p))
	}
	w := httptest.NewRecorder()
	d.Wrap(http.NotFoundHandler()).ServeHTTP(w, r)
	return w
}

var admin = &peer{Login: "admin@example.com", DisplayName: "Ada", Device: "laptop"}

// TestDashboardAdminsOnly: an admin gets the page, a member and a request
// without a tailnet peer are refused, and other hosts go to the door.
func TestDashboardAdminsOnly(t *testing.T) {
	d, _, _ := newDash(t)
	if w := ask(d, admin, "GET", "/", nil, nil); w.Code != 200 || !strings.Contains(w.Body.String(), "admin@example.com (Ada)") {
		t.Errorf("admin: %d %s", w.Code, w.Body)
	}
	if w := ask(d, &peer{Login: "kid@example.com", Device: "phone"}, "GET", "/", nil, nil); w.Code != 403 || strings.Contains(w.Body.String(), "photos") {
		t.Errorf("member: %d, want 403 without the table", w.Code)
	}
	if w := ask(d, nil, "GET", "/", nil, nil); w.Code != 403 {
		t.Errorf("no peer: %d, want 403", w.Code)
	}
	for _, host := range []string{"gatehouse", "gatehouse.tail.ts.net", "GATEHOUSE.tail.ts.net."} {
		if !d.Serves(host) {
			t.Errorf("Serves(%q) = false", host)
		}
	}
	for _, host := range []string{"photos", "photos.tail.ts.net", "gatehouse2.tail.ts.net"} {
		if d.Serves(host) {
			t.Errorf("Serves(%q) = true", host)
		}
	}
}

// TestDashboardShowsTheHouse: the matrix with presets and links, a
// refusal with who and why, a rejected reload's diagnostic.
func TestDashboardShowsTheHouse(t *testing.T) {
	d, refusals, _ := newDash(t)
	refusals.Record(proxy.Answer{Door: "tailnet", Route: "photos", Method: "GET", Host: "photos", URI: "/admin", Status: 403,
		Identity: auth.Identity{Tailnet: &auth.TailnetPeer{Login: "kid@example.com", Name: "Kid"}}, Start: time.Now()})
	refusals.Record(proxy.Answer{Door: "cloudflare", Route: "photos", Method: "POST", Host: "photos.example.com", URI: "/api/auth/login",
		Status: 429, Limit: "banned", Client: netip.MustParseAddr("203.0.113.9"), Start: time.Now()})
	// A backend's own 404 is no refusal of gatehouse's.
	refusals.Record(proxy.Answer{Route: "photos", Status: 404, Forwarded: true, URI: "/backend-404", Start: time.Now()})
	body := ask(d, admin, "GET", "/", nil, nil).Body.String()
	for _, want := range []string{
		"Family photos", "📷", "immich", `href="https://photos.example.com/"`, `href="https://photos.tail.ts.net/"`,
		"tailnet: kid@example.com (Kid)", "403 forbidden", "203.0.113.9", "429 banned",
		"routes.hcl:3:1: Unsupported argument; bogus", "rejected",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "backend-404") {
		t.Error("a backend's own 404 is listed as a refusal")
	}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// TestUnbanAction: the page's form lifts a ban; the same POST from
// another site, or without the page's token, changes nothing.
func TestUnbanAction(t *testing.T) {
	d, _, reg := newDash(t)
	lim := reg.Limiter("route/photos/path/api/auth/login", ratelimit.Rule{}, &ratelimit.BanRule{Failures: 1, Window: time.Minute, BanFor: time.Hour, Statuses: []int{401}})
	k := ratelimit.ClientKey("", netip.MustParseAddr("203.0.113.9"))
	lim.Done(k, lim.Allow(k, time.Now()), 401, time.Now())
	page := ask(d, admin, "GET", "/", nil, nil).Body.String()
	m := csrfRe.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "203.0.113.9") {
		t.Fatalf("no ban with a form on the page:\n%s", page)
	}
	form := url.Values{"csrf": {m[1]}, "scope": {"route/photos/path/api/auth/login"}, "client": {"203.0.113.9"}}
	if w := ask(d, admin, "POST", "/unban", form, map[string]string{"Sec-Fetch-Site": "cross-site"}); w.Code != 403 {
		t.Errorf("cross-site unban: %d, want 403", w.Code)
	}
	bad := url.Values{"csrf": {"00"}, "scope": form["scope"], "client": form["client"]}
	if w := ask(d, admin, "POST", "/unban", bad, map[string]string{"Sec-Fetch-Site": "same-origin"}); w.Code != 403 {
		t.Errorf("unban with a wrong token: %d, want 403", w.Code)
	}
	if w := ask(d, &peer{Login: "kid@example.com", Device: "phone"}, "POST", "/unban", form, map[string]string{"Sec-Fetch-Site": "same-origin"}); w.Code != 403 {
		t.Errorf("member's unban: %d, want 403", w.Code)
	}
	if len(reg.Bans(time.Now())) != 1 {
		t.Fatal("a refused unban lifted the ban")
	}
	w := ask(d, admin, "POST", "/unban", form, map[string]string{"Origin": "https://gatehouse.tail.ts.net"})
	if w.Code != 200 || !strings.Contains(w.Body.String(), "Unbanned 203.0.113.9") {
		t.Errorf("unban: %d %s", w.Code, w.Body)
	}
	if n := len(reg.Bans(time.Now())); n != 0 {
		t.Errorf("%d bans left after unban", n)
	}
}
