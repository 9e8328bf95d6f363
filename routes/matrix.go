package routes

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MatrixOptions say how much WriteMatrix shows.
type MatrixOptions struct {
	// Verbose lists every path a preset adds; otherwise a preset is one
	// line that counts its paths.
	Verbose bool
	// Route, if set, shows only the route of that name, with every path.
	Route string
}

// WriteMatrix prints the accessibility matrix, what the file promises read
// back from it: a row per route with its backend and, per door, the host
// and access level; below it the limit in force for the route, then its
// path rules (a preset on one line unless o.Verbose), each with what it
// changes. It fits 100 columns for tables like the shipped one (a long
// backend or host widens its column, nothing else).
func WriteMatrix(w io.Writer, cfg *Config, o MatrixOptions) error {
	list := cfg.Routes
	verbose := o.Verbose
	if o.Route != "" {
		i := slices.IndexFunc(list, func(r *Route) bool { return r.Name == o.Route })
		if i < 0 {
			names := make([]string, len(list))
			for j, r := range list {
				names[j] = r.Name
			}
			return fmt.Errorf("%s has no route %q; its routes are %s", cfg.File, o.Route, strings.Join(names, ", "))
		}
		list, verbose = list[i:i+1], true
	}
	rows := [][]string{{"ROUTE", "BACKEND", "TAILNET", "CLOUDFLARE"}}
	for _, r := range list {
		rows = append(rows, []string{r.Name, r.Backend.Raw, tailnetCell(cfg, r), cloudflareCell(r)})
	}
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	line := func(row []string) {
		for i, c := range row {
			if i == len(row)-1 {
				b.WriteString(c)
				break
			}
			b.WriteString(c + strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
		}
		b.WriteString("\n")
	}
	line(rows[0])
	for i, r := range list {
		line(rows[i+1])
		writeDetails(&b, cfg, r, verbose)
	}
	b.WriteString("\nTailnet hosts are node names: https://NAME.<your tailnet>.ts.net. Limits count per client\n" +
		"(a signed-in user, a tailnet device, else an address); a path's limit is a bucket of its own.\n")
	if !verbose {
		b.WriteString("Presets are one line each: -v lists their paths, -route NAME shows one route whole.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func tailnetCell(cfg *Config, r *Route) string {
	dr := r.Doors[Tailnet]
	switch {
	case dr == nil:
		return "—"
	case !r.Opens(Tailnet):
		return "closed (no node)"
	case !dr.Node && cfg.Tailnet != nil:
		return dr.Host + " on " + cfg.Tailnet.Hostname + " " + dr.Access.String()
	}
	return dr.Host + " " + dr.Access.String()
}

func cloudflareCell(r *Route) string {
	dr := r.Doors[Cloudflare]
	if dr == nil {
		return "—"
	}
	cell := dr.Host + " " + dr.Access.String()
	if len(dr.Groups) > 0 {
		cell += " (" + strings.Join(dr.Groups, ", ") + ")"
	}
	return cell
}

// lanCell is the LAN door's line below a route's row (a fifth column would
// not fit 100 columns): the host, "the cloudflare host" in the usual case.
func lanCell(r *Route) string {
	dr := r.Doors[LAN]
	if dr == nil {
		return "—"
	}
	host := dr.Host
	if cf := r.Doors[Cloudflare]; cf != nil && cf.Host == host {
		host = "the cloudflare host,"
	}
	cell := host + " " + dr.Access.String()
	if len(dr.Groups) > 0 {
		cell += " (" + strings.Join(dr.Groups, ", ") + ")"
	}
	if dr.MaxBody > 0 {
		cell += " max_body " + humanSize(dr.MaxBody)
	}
	return cell
}

// humanSize writes a byte count the way routes.hcl's sizes are written.
func humanSize(n int64) string {
	for _, u := range []struct {
		unit string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.unit)
		}
	}
	return fmt.Sprintf("%d", n)
}

// writeDetails writes a route's limit and path rules, indented below its row.
func writeDetails(b *strings.Builder, cfg *Config, r *Route, verbose bool) {
	const indent = "  "
	if r.Doors[LAN] != nil {
		b.WriteString(indent + "lan " + lanCell(r) + "\n")
	}
	limit := "none"
	if l := r.RouteLimit(cfg.Limit); l != nil {
		limit = describeLimit(*l)
		if r.Limit == nil {
			limit += " (the top-level limit)"
		}
	}
	fmt.Fprintf(b, "%slimit %s\n", indent, limit)

	type row struct{ label, what string }
	var paths []row
	presetRules := map[string][]*PathRule{}
	for _, p := range r.Paths {
		if p.Preset != "" && !verbose {
			presetRules[p.Preset] = append(presetRules[p.Preset], p)
			continue
		}
		what := pathChanges(p)
		if p.Preset != "" {
			what += "  (" + p.Preset + " preset)"
		}
		paths = append(paths, row{p.Label, what})
	}
	for _, name := range r.Presets {
		if rules := presetRules[name]; len(rules) > 0 {
			paths = append(paths, row{"preset " + name, presetSummary(rules)})
		}
	}
	width := 0
	for _, p := range paths {
		width = max(width, utf8.RuneCountInString(p.label))
	}
	width = min(width, 40)
	for _, p := range paths {
		pad := max(width-utf8.RuneCountInString(p.label), 0) + 2
		fmt.Fprintf(b, "%s%s%s%s\n", indent, p.label, strings.Repeat(" ", pad), p.what)
	}
}

// pathChanges says what a path rule changes: the doors whose access it
// sets, its own limit and its ban.
func pathChanges(p *PathRule) string {
	var parts []string
	for _, d := range Doors {
		if a := p.Access[d]; a != nil {
			parts = append(parts, d.String()+" "+a.String())
		}
	}
	if p.Limit != nil {
		parts = append(parts, "limit "+describeLimit(p.Limit.Filled()))
	}
	if bn := p.Ban; bn != nil {
		statuses := make([]string, len(bn.Statuses))
		for i, s := range bn.Statuses {
			statuses[i] = strconv.Itoa(s)
		}
		parts = append(parts, fmt.Sprintf("ban %s after %d %s (%s) in %s",
			shortDuration(bn.BanFor), bn.Failures, plural(bn.Failures, "failure"), strings.Join(statuses, ", "), shortDuration(bn.Window)))
	}
	if len(parts) == 0 {
		return "as the route"
	}
	return strings.Join(parts, "; ")
}

// presetSummary counts a preset's paths by the access they give, per door.
func presetSummary(rules []*PathRule) string {
	var parts []string
	for _, d := range Doors {
		counts := map[Access]int{}
		for _, p := range rules {
			if a := p.Access[d]; a != nil {
				counts[*a]++
			}
		}
		var kinds []string
		for _, a := range []Access{App, Family, Members, Admin, Closed} {
			if n := counts[a]; n > 0 {
				kinds = append(kinds, fmt.Sprintf("%d %s", n, a))
			}
		}
		if len(kinds) > 0 {
			parts = append(parts, d.String()+" "+strings.Join(kinds, ", "))
		}
	}
	return fmt.Sprintf("%d %s: %s", len(rules), plural(len(rules), "path"), strings.Join(parts, "; "))
}

// describeLimit writes a limit the way routes.hcl spells it.
func describeLimit(l Limit) string {
	var parts []string
	if l.Rate > 0 {
		parts = append(parts, fmt.Sprintf("%s, burst %d", rate(l.Rate), l.Burst))
	}
	if l.Concurrent > 0 {
		parts = append(parts, fmt.Sprintf("%d at once", l.Concurrent))
	}
	if l.TotalRate > 0 {
		parts = append(parts, fmt.Sprintf("all clients %s, burst %d", rate(l.TotalRate), l.TotalBurst))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// rate writes requests per second in the largest unit that keeps it whole.
func rate(perSecond float64) string {
	for _, u := range []struct {
		name string
		secs float64
	}{{"s", 1}, {"min", 60}, {"h", 3600}} {
		if n := perSecond * u.secs; n >= 1 && n == float64(int64(n)) {
			return strconv.FormatInt(int64(n), 10) + "/" + u.name
		}
	}
	return strconv.FormatFloat(perSecond*3600, 'g', 4, 64) + "/h"
}

// shortDuration writes 15m rather than 15m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// plural is word for n of them: "1 error", "2 errors".
func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// Summary is the one line `gatehouse check` prints for a good file.
func Summary(cfg *Config) string {
	var n [numDoors]int
	paths := 0
	for _, r := range cfg.Routes {
		for _, door := range Doors {
			if r.Doors[door] != nil {
				n[door]++
			}
		}
		paths += len(r.Paths)
	}
	s := fmt.Sprintf("%s: ok — %d %s (%d on the tailnet, %d through Cloudflare, %d on the LAN), %d path %s, %d %s",
		cfg.File, len(cfg.Routes), plural(len(cfg.Routes), "route"), n[Tailnet], n[Cloudflare], n[LAN],
		paths, plural(paths, "rule"), len(cfg.Warnings), plural(len(cfg.Warnings), "warning"))
	if cfg.Acknowledged > 0 {
		s += fmt.Sprintf(" (and %d acknowledged)", cfg.Acknowledged)
	}
	return s
}

// Count is n of word, for messages: "1 error", "3 errors".
func Count(n int, word string) string { return strconv.Itoa(n) + " " + plural(n, word) }
