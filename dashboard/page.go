package dashboard

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"gatehouse/auth"
	"gatehouse/health"
	"gatehouse/ratelimit"
	"gatehouse/routes"
)

//go:embed dashboard.html
var files embed.FS

var pageTmpl = template.Must(template.New("dashboard.html").Funcs(template.FuncMap{
	"ago":  ago,
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"ms": func(d time.Duration) string {
		return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
	},
}).ParseFS(files, "dashboard.html"))

// ago says how long before now t was, to the second.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

type doorCell struct {
	Door   string
	Open   bool
	Host   string
	Link   string
	Access string
	Groups string
}

type pathRow struct {
	Label  string
	Preset string
	Access []string // per door: the rule's access, "as route" or ""
}

type routeRow struct {
	Name, Description, Icon string
	IconImage               bool
	Backend                 string
	Doors                   []doorCell
	Paths                   []pathRow
	Presets                 string
	Health                  health.State
	HasHealth               bool
}

type pageData struct {
	Admin      string
	Notice     string
	CSRF       string
	Version    string
	Uptime     string
	Started    time.Time
	Doors      []string
	Routes     []routeRow
	Down       []routeRow
	Refusals   []Refusal
	Reloads    []Reload
	Bans       []ratelimit.Ban
	Devices    []deviceRow
	DevicesOff bool
	DevicesErr string
	Nodes      []Node
	Counts     []count
}

type deviceRow struct {
	ID, Owner, Name string
	Created         time.Time
	LastUsed        time.Time
}

type count struct {
	Name  string
	Value string
}

func (d *Dashboard) page(w http.ResponseWriter, r *http.Request, p *auth.TailnetPeer, notice string) {
	t := d.opt.Table()
	data := pageData{
		Admin: adminName(p), Notice: notice, CSRF: d.csrfToken(p), Version: d.opt.Version,
		Started: d.opt.Started, Uptime: time.Since(d.opt.Started).Round(time.Second).String(),
	}
	if data.Version == "" {
		data.Version = buildVersion()
	}
	for _, door := range routes.Doors {
		data.Doors = append(data.Doors, door.String())
	}
	// Links to a tailnet route use the dashboard's own MagicDNS suffix.
	suffix, scheme := "", "http"
	if i := strings.IndexByte(r.Host, '.'); i >= 0 {
		suffix = r.Host[i:]
	}
	if r.TLS != nil {
		scheme = "https"
	}
	for _, rt := range t.Routes() {
		row := routeRow{Name: rt.Name, Description: rt.Description, Icon: rt.Icon, IconImage: rt.IconIsImage(),
			Backend: rt.Backend.Raw, Presets: strings.Join(rt.Presets, ", ")}
		for _, door := range routes.Doors {
			dr := rt.Doors[door]
			if dr == nil {
				row.Doors = append(row.Doors, doorCell{Door: door.String()})
				continue
			}
			c := doorCell{Door: door.String(), Open: true, Host: dr.Host, Access: dr.Access.String(), Groups: strings.Join(dr.Groups, ", ")}
			if door == routes.Cloudflare {
				c.Link = "https://" + dr.Host + "/"
			} else {
				c.Host += suffix
				c.Link = scheme + "://" + dr.Host + suffix + "/"
			}
			row.Doors = append(row.Doors, c)
		}
		for _, pr := range rt.Paths {
			prow := pathRow{Label: pr.Label, Preset: pr.Preset}
			for _, door := range routes.Doors {
				switch {
				case pr.Access[door] != nil:
					prow.Access = append(prow.Access, pr.Access[door].String())
				case rt.Doors[door] != nil:
					prow.Access = append(prow.Access, "as route")
				default:
					prow.Access = append(prow.Access, "")
				}
			}
			row.Paths = append(row.Paths, prow)
		}
		if d.opt.Health != nil {
			row.Health, row.HasHealth = d.opt.Health.State(rt.Name)
		}
		data.Routes = append(data.Routes, row)
		if row.HasHealth && row.Health.Checked && !row.Health.Up {
			data.Down = append(data.Down, row)
		}
	}
	if d.opt.Refusals != nil {
		data.Refusals = d.opt.Refusals.Recent()
	}
	if d.opt.Reloads != nil {
		data.Reloads = d.opt.Reloads.Recent()
	}
	if d.opt.Limits != nil {
		data.Bans = d.opt.Limits.Bans(time.Now())
	}
	var dt DeviceTokens
	if d.opt.Devices != nil {
		dt = d.opt.Devices()
	}
	if dt == nil {
		data.DevicesOff = true
	} else if list, err := dt.DeviceTokensList(); err != nil {
		data.DevicesErr = err.Error()
	} else {
		for _, tok := range list {
			owner := tok.Email
			if owner == "" {
				owner = tok.Subject
			}
			data.Devices = append(data.Devices, deviceRow{ID: tok.ID, Owner: owner, Name: tok.Name, Created: tok.Created, LastUsed: tok.LastUsed})
		}
		sort.Slice(data.Devices, func(i, j int) bool {
			if data.Devices[i].Owner != data.Devices[j].Owner {
				return data.Devices[i].Owner < data.Devices[j].Owner
			}
			return data.Devices[i].Name < data.Devices[j].Name
		})
	}
	if d.opt.Nodes != nil {
		data.Nodes = d.opt.Nodes()
	}
	data.Counts = d.counts()

	var b bytes.Buffer
	if err := pageTmpl.Execute(&b, data); err != nil {
		d.opt.Log.Error("dashboard page", "err", err)
		writeText(w, http.StatusInternalServerError, "Dashboard broken", "The page could not be made; the log says why.")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b.Bytes())
	}
}

// counts sums the gateway's counters from its metrics registry.
func (d *Dashboard) counts() []count {
	if d.opt.Metrics == nil {
		return nil
	}
	families, err := d.opt.Metrics.Registry.Gather()
	if err != nil {
		return nil
	}
	sums := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			v := m.GetCounter().GetValue()
			if m.GetGauge() != nil {
				v = m.GetGauge().GetValue()
			}
			key := f.GetName()
			for _, l := range m.GetLabel() {
				switch {
				case f.GetName() == "gatehouse_requests_total" && l.GetName() == "code":
					key += " " + l.GetValue()[:1] + "xx"
				case f.GetName() == "gatehouse_reloads_total" && l.GetName() == "result",
					f.GetName() == "gatehouse_ratelimit_rejections_total" && l.GetName() == "reason":
					key += " " + l.GetValue()
				}
			}
			sums[key] += v
		}
	}
	wanted := []struct{ key, label string }{
		{"gatehouse_requests_total 2xx", "requests answered 2xx"},
		{"gatehouse_requests_total 3xx", "requests answered 3xx"},
		{"gatehouse_requests_total 4xx", "requests answered 4xx"},
		{"gatehouse_requests_total 5xx", "requests answered 5xx"},
		{"gatehouse_upstream_errors_total", "backend failures (502/504)"},
		{"gatehouse_ratelimit_rejections_total rate", "rate limited"},
		{"gatehouse_ratelimit_rejections_total banned", "refused while banned"},
		{"gatehouse_bans_total", "bans"},
		{"gatehouse_reloads_total ok", "reloads accepted"},
		{"gatehouse_reloads_total rejected", "reloads rejected"},
		{"gatehouse_ratelimit_clients", "clients tracked"},
	}
	var out []count
	for _, w := range wanted {
		out = append(out, count{w.label, strconv.FormatFloat(sums[w.key], 'f', -1, 64)})
	}
	return out
}

func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " (" + s.Value[:12] + ")"
		}
	}
	return v
}

// writeText answers with a short page of the dashboard's own.
func writeText(w http.ResponseWriter, status int, title, msg string) {
	var b bytes.Buffer
	_ = textTmpl.Execute(&b, struct{ Title, Msg string }{title, msg})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

var textTmpl = template.Must(template.New("text").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Msg}}</p></body></html>
`))
