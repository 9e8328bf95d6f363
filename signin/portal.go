package signin

import (
	"bytes"
	"html/template"
	"net"
	"net/http"
	"sort"
	"strconv"

	"gatehouse/auth"
	"gatehouse/routes"
)

// portalPath is the family portal on every family host (and on the oidc
// block's portal_host).
const portalPath = "/.gatehouse/"

// portalService is one service a member may open.
type portalService struct {
	Name, Description, Icon, Link string
	IconImage                     bool
}

// reachable lists the Cloudflare routes u may open, by name: those the
// door's own decision (auth.Policy.Decide) lets them into, so a route of a
// group they are not in never shows.
// Links keep port, the port the portal itself was reached on ("" without
// one, as through Cloudflare).
func reachable(t *routes.Table, u *auth.FamilyUser, port string) []portalService {
	var out []portalService
	policy := auth.Policy{SignInReady: true}
	for _, r := range t.Routes() {
		dr := r.Doors[routes.Cloudflare]
		if dr == nil || dr.Access == routes.Closed {
			continue
		}
		if policy.Decide(dr.Access, auth.Identity{Family: u}, dr.Groups) != auth.Allow {
			continue
		}
		out = append(out, portalService{Name: r.Name, Description: r.Description, Icon: r.Icon,
			IconImage: r.IconIsImage(), Link: "https://" + dr.Host + port + "/"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// portal answers /.gatehouse/: the signed-in member's services, their
// devices page and sign-out. Without a session a browser is sent to sign
// in and comes back here.
func (s *SignIn) portal(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	sess := s.session(w, r)
	if sess == nil {
		s.Begin(w, r)
		return
	}
	t := s.opt.Table()
	if t == nil {
		unavailable(w, r)
		return
	}
	u := &auth.FamilyUser{Subject: sess.Sub, Email: sess.Email, Username: sess.Username, Groups: sess.Groups}
	who := sess.Email
	if who == "" {
		who = sess.Username
	}
	var b bytes.Buffer
	if err := portalTmpl.Execute(&b, struct {
		Who      string
		Services []portalService
		Devices  string
		Logout   string
	}{who, reachable(t, u, hostPort(r.Host)), devicesPath, logoutPath}); err != nil {
		s.log.Error("portal page", "err", err)
		writePage(w, http.StatusInternalServerError, "Portal broken", "The page could not be made; tell the person who runs this server.")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	// Icons may be images on the services' own hosts; no script runs.
	// No form-action: sign-out's form goes on to the provider.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; base-uri 'none'; frame-ancestors 'none'")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b.Bytes())
	}
}

// hostPort is ":port" of a Host header that names one, else "".
func hostPort(host string) string {
	if _, port, err := net.SplitHostPort(host); err == nil && port != "" {
		return ":" + port
	}
	return ""
}

var portalTmpl = template.Must(template.New("portal").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Home</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:2em auto;padding:0 1em;color:#222}
ul.services{list-style:none;padding:0}
ul.services li{margin:.5em 0}
ul.services a{display:flex;gap:.8em;align-items:center;padding:.7em .9em;border:1px solid #ddd;border-radius:8px;text-decoration:none;color:inherit}
ul.services a:hover{background:#f6f6f6}
.icon{font-size:1.6em;width:1.4em;text-align:center}.icon img{width:1.4em;height:1.4em}
.desc{color:#666;font-size:.92em}
footer{margin-top:2em;display:flex;gap:1em;align-items:center;flex-wrap:wrap}
</style></head><body>
<h1>Home</h1>
<p>Signed in as <b>{{.Who}}</b>.</p>
{{if .Services}}<ul class="services">{{range .Services}}
<li class="service"><a href="{{.Link}}"><span class="icon">{{if .IconImage}}<img alt="" src="{{.Icon}}">{{else}}{{.Icon}}{{end}}</span>
<span><b>{{.Name}}</b>{{if .Description}}<br><span class="desc">{{.Description}}</span>{{end}}</span></a></li>{{end}}
</ul>{{else}}<p>There are no services for you here yet; ask the person who runs this server.</p>{{end}}
<footer><a href="{{.Devices}}">Your devices</a>
<form method="post" action="{{.Logout}}"><button type="submit">Sign out</button></form></footer>
</body></html>
`))
