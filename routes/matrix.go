package routes

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteMatrix prints the accessibility matrix: one row per route with its
// backend and, per door, the host and access level; path rules follow on
// indented rows: what the file promises, read back from it (the README
// shows the shipped routes.hcl's matrix).
func WriteMatrix(w io.Writer, cfg *Config) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tBACKEND\tTAILNET\tCLOUDFLARE\tLAN")
	for _, r := range cfg.Routes {
		cells := []string{r.Name, r.Backend.Raw}
		for _, door := range Doors {
			dr := r.Doors[door]
			if dr == nil {
				cells = append(cells, "—")
				continue
			}
			host := dr.Host
			if door == Tailnet {
				if dr.Node {
					host += ".<tailnet>" // a node of its own
				} else if cfg.Tailnet != nil {
					host += " (Host on " + cfg.Tailnet.Hostname + ")"
				}
			}
			cell := host + " " + dr.Access.String()
			if len(dr.Groups) > 0 {
				cell += " (" + strings.Join(dr.Groups, ", ") + ")"
			}
			if dr.MaxBody > 0 {
				cell += " max_body " + humanSize(dr.MaxBody)
			}
			cells = append(cells, cell)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
		for _, p := range r.Paths {
			label := "  path " + p.Label
			if p.Preset != "" {
				label += " (" + p.Preset + " preset)"
			}
			cells := []string{"", label}
			for _, door := range Doors {
				switch {
				case p.Access[door] != nil:
					cells = append(cells, "  "+p.Access[door].String())
				case r.Doors[door] != nil:
					cells = append(cells, "  (as route)")
				default:
					cells = append(cells, "")
				}
			}
			fmt.Fprintln(tw, strings.TrimRight(strings.Join(cells, "\t"), "\t"))
		}
	}
	return tw.Flush()
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
	return fmt.Sprintf("%s: ok — %d routes (%d on the tailnet, %d through Cloudflare, %d on the LAN), %d path rules, %d warnings",
		cfg.File, len(cfg.Routes), n[Tailnet], n[Cloudflare], n[LAN], paths, len(cfg.Warnings))
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
