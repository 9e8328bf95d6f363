package routes

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
)

// lanAddrs are the addresses the LAN door's hosts should resolve to at
// home: the IPs of lan.listen; a wildcard listen address has none to name.
func lanAddrs(l *LANConfig) (addrs []netip.Addr, wildcard bool) {
	for _, hp := range l.Listen {
		host, _, err := net.SplitHostPort(hp)
		if err != nil {
			continue
		}
		a, err := netip.ParseAddr(host)
		if err != nil || a.IsUnspecified() {
			wildcard = true
			continue
		}
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	return addrs, wildcard
}

// LANHosts are the hostnames the LAN door answers, in file order.
func LANHosts(cfg *Config) []string {
	var out []string
	for _, r := range cfg.Routes {
		if dr := r.Doors[LAN]; dr != nil && dr.Host != "" && !slices.Contains(out, dr.Host) {
			out = append(out, dr.Host)
		}
	}
	return out
}

// WriteSplitDNS prints the records a home resolver needs so that the
// public hostnames lead to the LAN door at home: the table, then the same
// records for dnsmasq (and Pi-hole), Unbound and AdGuard Home
// (docs/lan.md has where each goes).
func WriteSplitDNS(w io.Writer, cfg *Config) error {
	if cfg.LAN == nil {
		_, err := fmt.Fprintf(w, "%s has no lan block: there is no LAN door to point names at.\n", cfg.File)
		return err
	}
	addrs, wildcard := lanAddrs(cfg.LAN)
	var values []string
	for _, a := range addrs {
		values = append(values, a.String())
	}
	if len(values) == 0 || wildcard {
		values = append(values, "<this machine's LAN address>")
	}
	hosts := LANHosts(cfg)
	type rec struct{ host, typ, value string }
	var recs []rec
	for _, h := range hosts {
		for _, v := range values {
			typ := "A"
			if strings.Contains(v, ":") {
				typ = "AAAA"
			}
			recs = append(recs, rec{h, typ, v})
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tVALUE")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.host, r.typ, r.value)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("\n# dnsmasq (also Pi-hole: /etc/dnsmasq.d/gatehouse.conf)\n")
	for _, r := range recs {
		fmt.Fprintf(&b, "address=/%s/%s\n", r.host, r.value)
	}
	b.WriteString("\n# Unbound (server: section)\n")
	for _, r := range recs {
		fmt.Fprintf(&b, "local-data: \"%s. %s %s\"\n", r.host, r.typ, r.value)
	}
	b.WriteString("\n# AdGuard Home (Filters → DNS rewrites), one per line: domain → answer\n")
	for _, r := range recs {
		fmt.Fprintf(&b, "%s → %s\n", r.host, r.value)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
