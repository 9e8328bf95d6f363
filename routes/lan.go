package routes

import (
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

var (
	lanSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "listen", Required: true}, {Name: "redirect_listen"}, {Name: "networks"},
		{Name: "state_dir"}, {Name: "acme_ca"}, {Name: "acme_email"},
		{Name: "dns_token_file", Required: true}, {Name: "certificates"},
	}}
	lanDoorSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "host"}, {Name: "access", Required: true}, {Name: "groups"}, {Name: "identity_headers"},
		{Name: "max_body"},
	}}
)

// DefaultLANNetworks are the clients a LAN door accepts when the file
// names none: the private IPv4 ranges (RFC 1918), IPv6 unique local and
// link-local addresses, and loopback.
var DefaultLANNetworks = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
}

// lan decodes the top-level lan block; nil: the LAN door is off.
func (d *decoder) lan(b *hcl.Block, filename string) *LANConfig {
	if b == nil {
		return nil
	}
	c := d.content(b.Body, lanSchema)
	l := &LANConfig{
		Networks: DefaultLANNetworks, StateDir: "lan", ACMECA: LetsEncrypt,
		Wildcard: true, Range: b.DefRange,
	}
	if c == nil {
		return l
	}
	if list, rng, ok := d.strList(c.Attributes, "listen"); ok {
		l.ListenRange = rng
		for _, s := range list {
			l.Listen = append(l.Listen, d.listenAddr(s, rng, "lan.listen"))
		}
		if len(list) == 0 {
			d.errorf(rng, "No LAN address", `lan.listen needs at least one address, like ["192.168.1.10:443"].`)
		}
	}
	if list, rng, ok := d.strList(c.Attributes, "redirect_listen"); ok {
		l.RedirectRange = rng
		for _, s := range list {
			l.RedirectListen = append(l.RedirectListen, d.listenAddr(s, rng, "lan.redirect_listen"))
		}
	}
	if list, ok := d.prefixes(c.Attributes, "networks", "Invalid network", `"192.168.1.0/24"`); ok {
		l.Networks = list
	}
	if s, _, ok := d.str(c.Attributes, "state_dir"); ok {
		l.StateDir = s
	}
	if s, rng, ok := d.str(c.Attributes, "acme_ca"); ok {
		switch s {
		case "letsencrypt":
			l.ACMECA = LetsEncrypt
		case "letsencrypt-staging":
			l.ACMECA = LetsEncryptStaging
		default:
			if u, err := url.Parse(s); err != nil || u.Scheme != "https" || u.Host == "" {
				d.errorf(rng, "Invalid acme_ca",
					`acme_ca is "letsencrypt", "letsencrypt-staging" or an ACME directory URL (https://…/directory), not %q.`, s)
			}
			l.ACMECA = s
		}
	}
	l.ACMEEmail, _, _ = d.str(c.Attributes, "acme_email")
	l.DNSTokenFile, _, _ = d.str(c.Attributes, "dns_token_file")
	if s, rng, ok := d.str(c.Attributes, "certificates"); ok {
		switch s {
		case "wildcard":
			l.Wildcard = true
		case "per_name":
			l.Wildcard = false
		default:
			d.errorf(rng, "Invalid certificates", `certificates is "wildcard" (one *.<domain> certificate) or "per_name", not %q.`, s)
		}
	}
	// Relative paths are relative to routes.hcl, like the tailnet block's.
	base := filepath.Dir(filename)
	for _, p := range []*string{&l.StateDir, &l.DNSTokenFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	return l
}

// lanHost is the LAN host of a route: the one written in its lan block,
// else its Cloudflare host, so one bookmark works at home and away.
func (d *decoder) lanHost(r *Route, b *hcl.Block, s string, rng hcl.Range, set bool, cfg *Config) string {
	if !set {
		if cf := r.Doors[Cloudflare]; cf != nil && cf.Host != "" {
			return cf.Host
		}
		d.errorf(b.DefRange, "Missing host",
			`the lan door of route %q needs host = "<name>" when the route has no cloudflare block to take it from.`, r.Name)
		return ""
	}
	return d.publicHost(s, rng, cfg)
}

// LANNames are the names the LAN door needs certificates for: with
// wildcard certificates *.<domain>, plus <domain> and any host the
// wildcard does not cover; else every LAN host.
func LANNames(cfg *Config) []string {
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	wildcard := cfg.LAN != nil && cfg.LAN.Wildcard
	if wildcard {
		add("*." + cfg.Domain)
	}
	for _, r := range cfg.Routes {
		dr := r.Doors[LAN]
		if dr == nil || dr.Host == "" {
			continue
		}
		if wildcard {
			if parent, ok := strings.CutPrefix(dr.Host, strings.SplitN(dr.Host, ".", 2)[0]+"."); ok && parent == cfg.Domain {
				continue // covered by *.<domain>
			}
		}
		add(dr.Host)
	}
	return names
}
