package routes

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"golang.org/x/net/publicsuffix"
)

// DefaultCloudflareListen is the door cloudflared forwards to. Its port is
// clear of every service port in the reference matrix (8080 is Nextcloud).
const DefaultCloudflareListen = "127.0.0.1:8750"

var validAccess = "admin, members, family, app, closed"

// Load reads and validates a routes.hcl file.
func Load(filename string) (*Config, *hcl.File, hcl.Diagnostics) {
	src, err := os.ReadFile(filename)
	if err != nil {
		return nil, nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read route table",
			Detail:   fmt.Sprintf("%v; pass the right file with -config.", err),
		}}
	}
	return Parse(src, filename)
}

// Parse validates routes.hcl source. The Config is nil when any error
// diagnostic is present; warnings are returned in both cases and also kept
// in Config.Warnings.
func Parse(src []byte, filename string) (cfg *Config, file *hcl.File, diags hcl.Diagnostics) {
	// A bug in the reader must never take down a running gateway on
	// reload (invariant 5, docs/ARCHITECTURE.md): it becomes an error like
	// any other.
	defer func() {
		if r := recover(); r != nil {
			cfg, diags = nil, append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Internal error reading the route table",
				Detail:   fmt.Sprintf("gatehouse could not read %s (%v); the running table stays. Please report this with the file.", filename, r),
			})
		}
	}()
	p := hclparse.NewParser()
	f, diags := p.ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, f, diags
	}
	d := &decoder{diags: diags}
	cfg = d.file(f.Body, filename)
	if d.diags.HasErrors() {
		return nil, f, d.diags
	}
	for _, dg := range d.diags {
		if dg.Severity == hcl.DiagWarning {
			cfg.Warnings = append(cfg.Warnings, dg)
		}
	}
	return cfg, f, d.diags
}

func (d *decoder) file(body hcl.Body, filename string) *Config {
	cfg := &Config{File: filename}
	c := d.content(body, fileSchema)
	if c == nil {
		return cfg
	}
	ack := d.acknowledged(c.Attributes)
	if dom, rng, ok := d.str(c.Attributes, "domain"); ok {
		dom = strings.TrimSuffix(strings.ToLower(dom), ".")
		if !validHostname(dom) || !strings.Contains(dom, ".") {
			d.errorf(rng, "Invalid domain", `domain must be your public DNS domain, like "example.com", not %q.`, dom)
		}
		cfg.Domain = dom
	}

	cfg.Cloudflare = d.cloudflare(d.single(c.Blocks, "cloudflare", "The file"))
	cfg.Server = d.server(d.single(c.Blocks, "server", "The file"))
	cfg.Tailnet = d.tailnet(d.single(c.Blocks, "tailnet", "The file"))
	if t := cfg.Tailnet; t != nil {
		// Relative paths are relative to routes.hcl, not to wherever the
		// gateway happened to be started.
		base := filepath.Dir(filename)
		for _, p := range []*string{&t.StateDir, &t.AuthKeyFile, &t.ClientSecretFile} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(base, *p)
			}
		}
	}
	cfg.LAN = d.lan(d.single(c.Blocks, "lan", "The file"), filename)
	cfg.OIDC = d.oidc(d.single(c.Blocks, "oidc", "The file"), filename)
	cfg.Limit = d.limit(d.single(c.Blocks, "limit", "The file"))
	if mb := d.single(c.Blocks, "metrics", "The file"); mb != nil {
		mc := d.content(mb.Body, metricsSchema)
		cfg.Metrics = &MetricsConfig{}
		if s, rng, ok := d.str(mc.Attributes, "listen"); ok {
			cfg.Metrics.Listen, cfg.Metrics.ListenRange = d.listenAddr(s, rng, "metrics.listen"), rng
		}
	}

	names := map[string]*Route{}
	for _, b := range c.Blocks {
		if b.Type != "route" {
			continue
		}
		r := d.route(b, cfg)
		if prev, dup := names[r.Name]; dup {
			d.errorf(b.LabelRanges[0], "Duplicate route name",
				"route %q is already defined at line %d; give each route its own name.", r.Name, prev.Range.Start.Line)
			continue
		}
		names[r.Name] = r
		cfg.Routes = append(cfg.Routes, r)
	}
	d.crossChecks(cfg)
	d.familyWithoutSignInCheck()
	cfg.Acknowledged = d.dropAcknowledged(ack)
	return cfg
}

func (d *decoder) cloudflare(b *hcl.Block) CloudflareConfig {
	cf := CloudflareConfig{
		Listen:         DefaultCloudflareListen,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
	}
	if b == nil {
		return cf
	}
	c := d.content(b.Body, cloudflareSchema)
	if s, rng, ok := d.str(c.Attributes, "listen"); ok {
		cf.Listen, cf.ListenRange = d.listenAddr(s, rng, "cloudflare.listen"), rng
	}
	if list, ok := d.prefixes(c.Attributes, "trusted_proxies", "Invalid trusted proxy", `"127.0.0.1/32" or "::1"`); ok {
		cf.TrustedProxies = list
	}
	return cf
}

// prefixes reads a list of networks, each a CIDR or a single address.
func (d *decoder) prefixes(attrs hcl.Attributes, name, summary, example string) ([]netip.Prefix, bool) {
	list, rng, ok := d.strList(attrs, name)
	if !ok {
		return nil, false
	}
	var out []netip.Prefix
	for _, s := range list {
		p, err := parsePrefix(s)
		if err != nil {
			d.errorf(rng, summary, `%q in %s is not an IP address or CIDR; write it like %s.`, s, name, example)
			continue
		}
		out = append(out, p)
	}
	return out, true
}

// publicHost is a public hostname as written in a door block: lower-case,
// and a bare name like "photos" gets the domain appended.
func (d *decoder) publicHost(s string, rng hcl.Range, cfg *Config) string {
	host := strings.TrimSuffix(strings.ToLower(s), ".")
	if !strings.Contains(host, ".") && cfg.Domain != "" {
		host += "." + cfg.Domain
	}
	if !validHostname(host) {
		d.errorf(rng, "Invalid host", "%q is not a hostname; write a name like \"photos\" or \"photos.example.com\".", host)
	}
	return host
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (d *decoder) server(b *hcl.Block) ServerConfig {
	s := ServerConfig{
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		StallTimeout:      60 * time.Second,
		// Node.js servers (Immich, Jellyseerr, Audiobookshelf) close idle
		// keep-alive connections after 5s; closing ours first avoids
		// sending a request on a connection the backend is closing.
		UpstreamIdleTimeout: 4 * time.Second,
		ShutdownTimeout:     30 * time.Second,
		// Long enough for a backend building a large answer (a Nextcloud
		// folder listing, an Immich album zip), short enough that a hung
		// backend frees the client's concurrency slot.
		ResponseTimeout: 2 * time.Minute,
	}
	if b == nil {
		return s
	}
	c := d.content(b.Body, serverSchema)
	s.ReadHeaderTimeout = d.duration(c.Attributes, "read_header_timeout", s.ReadHeaderTimeout)
	s.IdleTimeout = d.duration(c.Attributes, "idle_timeout", s.IdleTimeout)
	s.StallTimeout = d.duration(c.Attributes, "stall_timeout", s.StallTimeout)
	s.UpstreamIdleTimeout = d.duration(c.Attributes, "upstream_idle_timeout", s.UpstreamIdleTimeout)
	s.ShutdownTimeout = d.duration(c.Attributes, "shutdown_timeout", s.ShutdownTimeout)
	s.ResponseTimeout = d.duration(c.Attributes, "response_timeout", s.ResponseTimeout)
	if n, rng, ok := d.size(c.Attributes, "max_header_bytes"); ok {
		if n < 4096 || n > 16<<20 {
			d.errorf(rng, "Invalid max_header_bytes", "max_header_bytes must be between 4KiB and 16MiB.")
		} else {
			s.MaxHeaderBytes = int(n)
		}
	}
	return s
}

func (d *decoder) tailnet(b *hcl.Block) *TailnetConfig {
	if b == nil {
		return nil
	}
	c := d.content(b.Body, tailnetSchema)
	t := &TailnetConfig{Hostname: "gatehouse", StateDir: "tailnet", Range: b.DefRange}
	if s, rng, ok := d.str(c.Attributes, "hostname"); ok {
		if !validLabel(s) {
			d.errorf(rng, "Invalid tailnet hostname", "hostname must be one DNS label (letters, digits, '-'), not %q.", s)
		}
		t.Hostname = s
	}
	if s, _, ok := d.str(c.Attributes, "state_dir"); ok {
		t.StateDir = s
	}
	t.AuthKeyFile, _, _ = d.str(c.Attributes, "auth_key_file")
	t.ClientSecretFile, _, _ = d.str(c.Attributes, "client_secret_file")
	if t.AuthKeyFile != "" && t.ClientSecretFile != "" {
		d.errorf(b.DefRange, "Two ways to join the tailnet",
			"set auth_key_file or client_secret_file, not both.")
	}
	t.AdminCapability, _, _ = d.str(c.Attributes, "admin_capability")
	t.LogUpload = d.boolean(c.Attributes, "log_upload")
	t.Verbose = d.boolean(c.Attributes, "verbose")
	if s, rng, ok := d.str(c.Attributes, "control_url"); ok {
		if u, err := url.Parse(s); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			d.errorf(rng, "Invalid control_url", `control_url must be an http(s) URL like "https://headscale.example.com", not %q.`, s)
		}
		t.ControlURL = s
	}
	t.Ephemeral = d.boolean(c.Attributes, "ephemeral")
	if tags, rng, ok := d.strList(c.Attributes, "tags"); ok {
		for _, tg := range tags {
			if !strings.HasPrefix(tg, "tag:") || !validLabel(strings.TrimPrefix(tg, "tag:")) {
				d.errorf(rng, "Invalid tag", `%q is not a Tailscale tag; tags look like "tag:gatehouse".`, tg)
			}
		}
		t.Tags = tags
	}
	if admins, _, ok := d.strList(c.Attributes, "admins"); ok {
		t.Admins = admins
	}
	if t.ClientSecretFile != "" && len(t.Tags) == 0 {
		d.errorf(b.DefRange, "OAuth client without tags",
			`nodes joining with an OAuth client secret must advertise tags, e.g. tags = ["tag:gatehouse"].`)
	}
	return t
}

func (d *decoder) oidc(b *hcl.Block, filename string) *OIDCConfig {
	if b == nil {
		return nil
	}
	c := d.content(b.Body, oidcSchema)
	o := &OIDCConfig{
		Range:             b.DefRange,
		Scopes:            []string{"openid", "profile", "email"},
		GroupsFromIDToken: []string{"groups"},
		SessionLifetime:   30 * 24 * time.Hour,
		RefreshInterval:   5 * time.Minute,
		OutageGrace:       time.Hour,
		// Keycloak's Offline Session Idle is 30 days: hourly keeps an
		// offline token alive and notices a disabled account soon.
		DeviceRefreshInterval: time.Hour,
		CookieKeyFile:         "oidc/cookie.keys",
	}
	if c == nil {
		return o
	}
	d.oidcClient(c, o)
	d.oidcClaims(c, o)
	d.oidcTimings(c, o)
	if s, rng, ok := d.str(c.Attributes, "cookie_key_file"); ok {
		if s == "" {
			d.errorf(rng, "Empty cookie_key_file", "cookie_key_file must name a file; gatehouse creates it with a new key if it does not exist.")
		}
		o.CookieKeyFile = s
	}
	o.DeviceTokenHeader = "X-Gatehouse-Token"
	if s, rng, ok := d.str(c.Attributes, "device_token_header"); ok {
		if !validHeaderName(s) || reservedHeader(s) {
			d.errorf(rng, "Invalid device_token_header",
				`device_token_header must be a header name of its own that apps can send, like "X-Gatehouse-Token"; %q is not one (letters, digits and '-', not a standard header).`, s)
		}
		o.DeviceTokenHeader = http.CanonicalHeaderKey(s)
	}
	// Relative paths are relative to routes.hcl, like the tailnet's.
	base := filepath.Dir(filename)
	for _, p := range []*string{&o.ClientSecretFile, &o.CookieKeyFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	if o.CookieKeyFile != "" {
		o.DeviceTokenFile = filepath.Join(filepath.Dir(o.CookieKeyFile), "devices.json")
	}
	return o
}

// oidcClient reads who gatehouse is at the provider: the issuer, the
// client and its secret.
func (d *decoder) oidcClient(c *hcl.BodyContent, o *OIDCConfig) {
	if s, rng, ok := d.str(c.Attributes, "issuer"); ok {
		if u, err := url.Parse(s); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(s, "/") {
			d.errorf(rng, "Invalid issuer",
				`issuer must be the provider's https issuer URL exactly as its discovery document names it, without a trailing slash, query or fragment, like "https://auth.example.com/realms/home"; not %q.`, s)
		}
		o.Issuer = s
	}
	if s, rng, ok := d.str(c.Attributes, "client_id"); ok {
		if strings.TrimSpace(s) == "" {
			d.errorf(rng, "Empty client_id", `client_id must name the OIDC client made for gatehouse, like "gatehouse".`)
		}
		o.ClientID = s
	}
	if s, rng, ok := d.str(c.Attributes, "client_secret_file"); ok {
		if s == "" {
			d.errorf(rng, "Empty client_secret_file", "client_secret_file must name the file holding the client secret (Keycloak: the client's Credentials tab).")
		}
		o.ClientSecretFile = s
	}
}

// oidcClaims reads what gatehouse asks of the provider and where in the
// tokens it finds the user: scopes, the cookie's domain, group claims.
func (d *decoder) oidcClaims(c *hcl.BodyContent, o *OIDCConfig) {
	if sc, rng, ok := d.strList(c.Attributes, "scopes"); ok {
		if !slices.Contains(sc, "openid") {
			d.errorf(rng, "Scopes without openid", `scopes must include "openid", or the provider issues no ID token; for example ["openid", "profile", "email"].`)
		}
		for _, s := range sc {
			if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
				d.errorf(rng, "Invalid scope", "%q is not a scope; scopes are single words like \"email\".", s)
			}
		}
		o.Scopes = sc
	}
	if s, rng, ok := d.str(c.Attributes, "cookie_domain"); ok {
		cd := strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(s), "."), ".")
		if !validHostname(cd) || !strings.Contains(cd, ".") {
			d.errorf(rng, "Invalid cookie_domain", `cookie_domain must be a domain like "example.com" that every family host is under, not %q.`, s)
		} else if ps, _ := publicsuffix.PublicSuffix(cd); ps == cd {
			d.errorf(rng, "Invalid cookie_domain", `%q is a public suffix: browsers refuse cookies for it. Use your own domain, like "example.com".`, s)
		} else {
			o.CookieDomain, o.CookieDomainRange = cd, rng
		}
	}
	if s, rng, ok := d.str(c.Attributes, "portal_host"); ok {
		h := strings.TrimSuffix(strings.ToLower(s), ".")
		if !validHostname(h) || !strings.Contains(h, ".") {
			d.errorf(rng, "Invalid portal_host", `portal_host must be a host name like "home.example.com", not %q.`, s)
		}
		o.PortalHost, o.PortalHostRange = h, rng
	}
	for _, name := range []string{"groups_from_id_token", "groups_from_access_token"} {
		paths, rng, ok := d.strList(c.Attributes, name)
		if !ok {
			continue
		}
		for _, p := range paths {
			if p == "" || slices.Contains(strings.Split(p, "."), "") {
				d.errorf(rng, "Invalid claim path",
					`%q in %s is not a claim path; write claim names joined by dots, like "groups", "realm_access.roles" or "resource_access.gatehouse.roles".`, p, name)
			}
		}
		if name == "groups_from_id_token" {
			o.GroupsFromIDToken = paths
		} else {
			o.GroupsFromAccessToken = paths
		}
	}
}

// oidcTimings reads how long a session lasts and how often gatehouse asks
// the provider again: the bounds on a disabled user's access.
func (d *decoder) oidcTimings(c *hcl.BodyContent, o *OIDCConfig) {
	var lifeRange hcl.Range
	if a, ok := c.Attributes["session_lifetime"]; ok {
		lifeRange = a.Expr.Range()
	}
	o.SessionLifetime = d.duration(c.Attributes, "session_lifetime", o.SessionLifetime)
	o.RefreshInterval = d.duration(c.Attributes, "refresh_interval", o.RefreshInterval)
	if o.SessionLifetime < 5*time.Minute {
		d.errorf(lifeRange, "session_lifetime too short", "session_lifetime must be at least 5m; family members would sign in all the time.")
	}
	if a, ok := c.Attributes["refresh_interval"]; ok {
		if o.RefreshInterval < 10*time.Second || o.RefreshInterval >= o.SessionLifetime {
			d.errorf(a.Expr.Range(), "Invalid refresh_interval",
				"refresh_interval must be at least 10s and shorter than session_lifetime (%s); it bounds how long a user disabled at the provider keeps access.", o.SessionLifetime)
		}
	}
	if s, rng, ok := d.str(c.Attributes, "outage_grace"); ok {
		v, err := time.ParseDuration(s)
		switch {
		case err != nil || v < 0:
			d.errorf(rng, "Invalid outage_grace",
				`outage_grace must be a duration like "1h", or "0" so that every family request answers 503 while the provider is unreachable; not %q.`, s)
		case v > o.SessionLifetime:
			d.errorf(rng, "Invalid outage_grace",
				"outage_grace must not be longer than session_lifetime (%s); it bounds how long a session works unchecked while the provider is unreachable.", o.SessionLifetime)
		default:
			o.OutageGrace = v
		}
	}
	if a, ok := c.Attributes["device_refresh_interval"]; ok {
		o.DeviceRefreshInterval = d.duration(c.Attributes, "device_refresh_interval", o.DeviceRefreshInterval)
		if o.DeviceRefreshInterval < time.Minute || o.DeviceRefreshInterval > 7*24*time.Hour {
			d.errorf(a.Expr.Range(), "Invalid device_refresh_interval",
				"device_refresh_interval must be between 1m and 168h; it bounds how long the device tokens of an account disabled at the provider keep working, and must be well within the provider's offline session idle time (Keycloak: 30 days).")
		}
	}
}

// listenAddr checks a host:port door address.
func (d *decoder) listenAddr(s string, rng hcl.Range, what string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		d.errorf(rng, "Invalid listen address", `%s must be host:port like "127.0.0.1:8750", not %q.`, what, s)
		return s
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		d.errorf(rng, "Invalid port", "%s: port %q must be a number from 1 to 65535.", what, port)
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			d.errorf(rng, "Invalid listen address", "%s: %q is not an IP address; listen on an address like 127.0.0.1.", what, host)
		}
	}
	return s
}

func (d *decoder) route(b *hcl.Block, cfg *Config) *Route {
	r := &Route{Name: b.Labels[0], Range: b.DefRange}
	if !validLabel(r.Name) {
		d.errorf(b.LabelRanges[0], "Invalid route name",
			"route name %q must be one DNS label (lower-case letters, digits, '-'): it names the route's tailnet node.", r.Name)
	}
	c := d.content(b.Body, routeSchema)
	if c == nil {
		return r
	}
	r.AllowNonLoopback = d.boolean(c.Attributes, "allow_non_loopback")
	if s, rng, ok := d.str(c.Attributes, "backend"); ok {
		r.Backend = d.backend(r, s, rng)
	}
	if n, _, ok := d.size(c.Attributes, "max_body"); ok {
		r.MaxBody = n
	}
	// Zero: the server block's response_timeout (Config.ResponseTimeout).
	r.ResponseTimeout = d.duration(c.Attributes, "response_timeout", 0)
	r.Limit = d.limit(d.single(c.Blocks, "limit", "route "+r.Name))
	r.Health = d.health(d.single(c.Blocks, "health", "route "+r.Name))
	if s, _, ok := d.str(c.Attributes, "description"); ok {
		r.Description = s
	}
	if s, rng, ok := d.str(c.Attributes, "icon"); ok {
		if strings.ContainsAny(s, "<>\"'") || len(s) > 512 {
			d.errorf(rng, "Invalid icon", `icon must be a short text or emoji ("📷") or the address of an image ("https://…/icon.png", "/favicon.ico"), not %q.`, s)
		}
		r.Icon = s
	}
	for _, door := range Doors {
		db := d.single(c.Blocks, door.String(), "route "+r.Name)
		if db == nil {
			continue
		}
		r.Doors[door] = d.doorRule(r, door, db, cfg)
	}
	seen := map[string]*PathRule{}
	for _, pb := range c.Blocks {
		if pb.Type != "path" {
			continue
		}
		pr := d.pathRule(r, pb, cfg)
		if pr == nil {
			continue
		}
		// HasPathPrefix ignores case, so "/admin" and "/ADMIN/" are one prefix.
		key := strings.ToLower(pr.Prefix)
		if prev, dup := seen[key]; dup {
			d.errorf(pb.LabelRanges[0], "Overlapping path rules",
				"path %q in route %q is the same prefix as the rule at line %d (a trailing slash does not make a new prefix); merge them.",
				pb.Labels[0], r.Name, prev.Range.Start.Line)
			continue
		}
		seen[key] = pr
		r.Paths = append(r.Paths, pr)
	}
	if names, rng, ok := d.strOrList(c.Attributes, "preset", "a preset name, or a list of them"); ok {
		d.presets(r, names, rng, seen)
	}
	d.masterRealmCheck(r)
	if dr := r.Doors[Cloudflare]; dr != nil && len(dr.IdentityHeaders) > 0 && !r.UsesAccess(Cloudflare, Family) {
		d.warnf(WarnIdentityHeadersWithoutFamily, dr.Range, "Identity headers without family access",
			"route %q sends identity headers on the cloudflare door, but only family access (a session or device token) has an identity to send; they are never set here.", r.Name)
	}
	if dr := r.Doors[LAN]; dr != nil && len(dr.IdentityHeaders) > 0 && !r.UsesAccess(LAN, Family) {
		d.warnf(WarnIdentityHeadersWithoutFamily, dr.Range, "Identity headers without family access",
			"route %q sends identity headers on the lan door, but only family access (a session or device token) has an identity to send; they are never set here.", r.Name)
	}
	if r.Doors[Tailnet] == nil && r.Doors[Cloudflare] == nil && r.Doors[LAN] == nil {
		d.warnf(WarnRouteWithoutDoor, b.DefRange, "Route reachable through no door",
			"route %q has neither a tailnet, a cloudflare nor a lan block, so nobody can reach it; add one or remove the route.", r.Name)
	}
	return r
}

// health reads a route's health block; without one the route gets the
// default check (a TCP connect every 15s).
func (d *decoder) health(b *hcl.Block) HealthCheck {
	h := HealthCheck{Interval: 15 * time.Second, Timeout: 5 * time.Second}
	if b == nil {
		return h
	}
	h.Range = b.DefRange
	c := d.content(b.Body, healthSchema)
	if c == nil {
		return h
	}
	if _, ok := c.Attributes["enabled"]; ok {
		h.Off = !d.boolean(c.Attributes, "enabled")
	}
	if s, rng, ok := d.str(c.Attributes, "path"); ok {
		if !strings.HasPrefix(s, "/") || !validPath(s) {
			d.errorf(rng, "Invalid health path", `health.path must be a path on the backend beginning with "/", like "/healthz", not %q.`, s)
		}
		h.Path = s
	}
	h.Interval = d.duration(c.Attributes, "interval", h.Interval)
	h.Timeout = d.duration(c.Attributes, "timeout", min(h.Timeout, h.Interval))
	if h.Timeout > h.Interval {
		d.errorf(b.DefRange, "Health timeout longer than interval", "health.timeout (%s) must not be longer than health.interval (%s).", h.Timeout, h.Interval)
	}
	return h
}

// validPath refuses control bytes and spaces in a configured path.
func validPath(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

func (d *decoder) backend(r *Route, s string, rng hcl.Range) Backend {
	be := Backend{Raw: s}
	u, err := url.Parse(s)
	if err != nil {
		d.errorf(rng, "Invalid backend", `backend %q is not a URL; write it like "http://127.0.0.1:2283".`, s)
		return be
	}
	switch u.Scheme {
	case "unix":
		if u.Path == "" || !path.IsAbs(u.Path) {
			d.errorf(rng, "Invalid backend", `a unix socket backend needs an absolute path, like "unix:///run/app/app.sock".`)
			return be
		}
		be.Socket = u.Path
		be.URL = &url.URL{Scheme: "http", Host: r.Name + ".sock"}
		return be
	case "http", "https":
	default:
		d.errorf(rng, "Invalid backend", `backend scheme %q is not supported; use http://, https:// or unix://.`, u.Scheme)
		return be
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		d.errorf(rng, "Invalid backend", `backend %q must be scheme://host:port with an optional path, like "http://127.0.0.1:2283".`, s)
		return be
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			d.errorf(rng, "Invalid port", "backend port %q must be a number from 1 to 65535.", p)
			return be
		}
	}
	if !r.AllowNonLoopback && !isLoopbackHost(u.Hostname()) {
		d.errorf(rng, "Backend is not on loopback",
			"backend host %q is not a loopback address; gatehouse forwards to services on this machine. Use 127.0.0.1 or ::1, or set allow_non_loopback = true in route %q if you mean it.",
			u.Hostname(), r.Name)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	be.URL = u
	return be
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

func (d *decoder) accessValue(attrs hcl.Attributes, name string) (Access, hcl.Range, bool) {
	s, rng, ok := d.str(attrs, name)
	if !ok {
		return Closed, rng, false
	}
	a, valid := ParseAccess(s)
	if !valid {
		d.errorf(rng, "Unknown access level", "%q is not an access level; use one of %s.", s, validAccess)
		return Closed, rng, false
	}
	return a, rng, true
}

func (d *decoder) checkDoorAccess(door Door, a Access, rng hcl.Range, cfg *Config, routeName string) {
	if door == Cloudflare && (a == Admin || a == Members) {
		d.errorf(rng, "Tailnet-only access on the Cloudflare door",
			"%q needs a tailnet identity, which requests through Cloudflare never have; use family (sign-in) or app on the cloudflare door, or move this to the tailnet block.", a)
	}
	if door == LAN && (a == Admin || a == Members) {
		d.errorf(rng, "Tailnet-only access on the LAN door",
			"%q needs a tailnet identity, which requests on the home network never have; use family (sign-in, with groups for admin-only services) or app on the lan door, or move this to the tailnet block.", a)
	}
	if door == Tailnet && a == Family {
		d.errorf(rng, "Family sign-in on the tailnet door",
			"family sign-in is for the cloudflare and lan doors; on the tailnet use members (anyone on the tailnet) or admin.")
	}
	if a == Family && cfg.OIDC == nil && !slices.ContainsFunc(d.familyWithoutSignIn, func(u routeUse) bool { return u.route == routeName }) {
		d.familyWithoutSignIn = append(d.familyWithoutSignIn, routeUse{routeName, rng})
	}
}

// routeUse is where a route uses something, for a warning that names every
// route at once.
type routeUse struct {
	route string
	rng   hcl.Range
}

// familyWithoutSignInCheck says once, for every route, that family routes
// fail closed without an oidc block: one warning, not one per route.
func (d *decoder) familyWithoutSignInCheck() {
	uses := d.familyWithoutSignIn
	if len(uses) == 0 {
		return
	}
	names := make([]string, len(uses))
	for i, u := range uses {
		names[i] = fmt.Sprintf("%q (line %d)", u.route, u.rng.Start.Line)
	}
	summary, detail := "Family route without sign-in",
		"route "+names[0]+" uses family access but there is no oidc block, so it answers 503 \"sign-in unavailable\" (fails closed) until you add one."
	if len(uses) > 1 {
		summary, detail = "Family routes without sign-in",
			"routes "+strings.Join(names[:len(names)-1], ", ")+" and "+names[len(names)-1]+
				" use family access but there is no oidc block, so they answer 503 \"sign-in unavailable\" (fail closed) until you add one."
	}
	d.warnf(WarnFamilyWithoutSignIn, uses[0].rng, summary, "%s", detail)
}

func (d *decoder) doorRule(r *Route, door Door, b *hcl.Block, cfg *Config) *DoorRule {
	schema := doorSchema
	switch door {
	case Tailnet:
		schema = tailnetDoorSchema
	case LAN:
		schema = lanDoorSchema
	}
	c := d.content(b.Body, schema)
	dr := &DoorRule{Range: b.DefRange, Node: door == Tailnet}
	if c == nil {
		return dr
	}
	if a, rng, ok := d.accessValue(c.Attributes, "access"); ok {
		dr.Access = a
		d.checkDoorAccess(door, a, rng, cfg, r.Name)
	}
	host, rng, ok := d.str(c.Attributes, "host")
	dr.HostRange = b.DefRange
	if ok {
		dr.HostRange = c.Attributes["host"].Range
	}
	switch door {
	case Tailnet:
		if !ok {
			host = r.Name
		} else if !validLabel(strings.ToLower(host)) {
			d.errorf(rng, "Invalid tailnet host",
				"the tailnet host is the node name, one DNS label like %q; the tailnet adds its own domain.", r.Name)
		}
		dr.Host = strings.ToLower(host)
	case Cloudflare:
		if !ok {
			d.errorf(b.DefRange, "Missing host",
				`the cloudflare door of route %q needs host = "<name>" (a bare name like "photos" gets the domain appended).`, r.Name)
			return dr
		}
		dr.Host = d.publicHost(host, rng, cfg)
	case LAN:
		dr.Host = d.lanHost(r, b, host, rng, ok, cfg)
		if n, rng, ok := d.size(c.Attributes, "max_body"); ok {
			if r.MaxBody > 0 && n > 0 && n < r.MaxBody {
				d.warnf(WarnLANMaxBodyBelowRoute, rng, "LAN max_body below the route's",
					"route %q takes less on the lan door (%d bytes) than its max_body (%d bytes) elsewhere; the lan door is the one for big uploads.", r.Name, n, r.MaxBody)
			}
			dr.MaxBody = n
		}
	}
	if _, ok := c.Attributes["node"]; ok {
		dr.Node = d.boolean(c.Attributes, "node")
	}
	if hs, rng, ok := d.strList(c.Attributes, "identity_headers"); ok {
		valid, list := IdentityHeaderNames, "Tailscale-User-Login, Tailscale-User-Name, Remote-User, Remote-Name, X-Forwarded-User, X-Remote-User"
		if door != Tailnet {
			valid, list = FamilyIdentityHeaderNames, "X-Forwarded-User, X-Forwarded-Email, X-Forwarded-Groups, X-Forwarded-Preferred-Username, Remote-User, Remote-Email, Remote-Groups, X-Remote-User"
		}
		for _, h := range hs {
			if !valid[http.CanonicalHeaderKey(h)] {
				d.errorf(rng, "Unknown identity header",
					"%q is not an identity header gatehouse sends on the %s door; use any of %s.", h, door, list)
				continue
			}
			if !slices.Contains(dr.IdentityHeaders, http.CanonicalHeaderKey(h)) {
				dr.IdentityHeaders = append(dr.IdentityHeaders, http.CanonicalHeaderKey(h))
			}
		}
	}
	if g, rng, ok := d.strList(c.Attributes, "groups"); ok {
		if dr.Access != Family {
			d.errorf(rng, "Groups without family access", "groups only apply to family access; remove them or set access = \"family\".")
		}
		dr.Groups = g
	}
	return dr
}

func (d *decoder) pathRule(r *Route, b *hcl.Block, cfg *Config) *PathRule {
	raw := b.Labels[0]
	c := d.content(b.Body, pathSchema)
	pr := &PathRule{Range: b.DefRange, Label: raw}
	clean := CleanPath(raw)
	if !strings.HasPrefix(raw, "/") || AmbiguousPath(raw) || clean != raw || clean == "/" {
		d.errorf(b.LabelRanges[0], "Invalid path prefix",
			`path %q must be an absolute, clean prefix below "/", like "/api/" or "/admin"; for the whole route set access in the door block.`, raw)
		return nil
	}
	pr.Prefix = strings.TrimSuffix(clean, "/")
	if c == nil {
		return pr
	}
	for _, door := range Doors {
		a, rng, ok := d.accessValue(c.Attributes, door.String())
		if !ok {
			continue
		}
		if r.Doors[door] == nil {
			d.errorf(rng, "Path rule for a closed door",
				"route %q has no %s block, so a %s rule for %q has no effect; add the door block or remove the attribute.",
				r.Name, door, door, raw)
			continue
		}
		d.checkDoorAccess(door, a, rng, cfg, r.Name)
		pr.Access[door] = &a
	}
	pr.Limit = d.limit(d.single(c.Blocks, "limit", "path "+raw))
	pr.Ban = d.ban(d.single(c.Blocks, "ban", "path "+raw))
	if pr.Limit != nil && pr.Limit.MaxClients != 0 {
		d.errorf(pr.Limit.Range, "max_clients in a path limit", "max_clients caps the whole gateway; set it in the top-level limit block.")
	}
	return pr
}

// presets expands a route's presets into path rules on the cloudflare
// door. A prefix the file writes a rule for keeps the file's rule; a prefix
// two presets name keeps the first preset's.
func (d *decoder) presets(r *Route, names []string, rng hcl.Range, seen map[string]*PathRule) {
	if r.Doors[Cloudflare] == nil && r.Doors[LAN] == nil {
		d.errorf(rng, "Preset without a cloudflare block",
			"preset %s refines the cloudflare and lan doors, but route %q has neither block; add one or remove the preset.",
			strings.Join(names, ", "), r.Name)
		return
	}
	for _, name := range names {
		p, found := Presets[name]
		switch {
		case !found:
			d.errorf(rng, "Unknown preset", "%q is not a preset; use one of %s.", name, presetList())
			continue
		case slices.Contains(r.Presets, name):
			d.errorf(rng, "Duplicate preset", "preset %q is named twice in route %q.", name, r.Name)
			continue
		}
		r.Presets = append(r.Presets, name)
		for _, pp := range p.Paths {
			prefix := strings.TrimSuffix(pp.Prefix, "/")
			key := strings.ToLower(prefix)
			if _, taken := seen[key]; taken {
				continue
			}
			access := pp.Access
			pr := &PathRule{Prefix: prefix, Label: pp.Prefix, Range: rng, Preset: name}
			// The same rules on both doors that answer the public
			// hostnames: an app's clients speak the same paths at home.
			for _, door := range []Door{Cloudflare, LAN} {
				if r.Doors[door] != nil {
					pr.Access[door] = &access
				}
			}
			seen[key] = pr
			r.Paths = append(r.Paths, pr)
		}
	}
}

// masterRealmCheck warns when a Keycloak route opens its master realm on
// the cloudflare door: the master realm is where Keycloak's own admins
// sign in, and Keycloak's reverse-proxy guide
// (keycloak/keycloak docs/guides/server/reverseproxy.adoc) exposes only what
// the household's realm needs. A route counts as Keycloak when a path rule
// of its names /realms.
func (d *decoder) masterRealmCheck(r *Route) {
	dr := r.Doors[Cloudflare]
	if dr == nil {
		return
	}
	const master = "/realms/master"
	keycloak := false
	var nearest *PathRule // the longest rule with cloudflare access above master
	for _, p := range r.Paths {
		if HasPathPrefix(p.Prefix, "/realms") {
			keycloak = true
		}
		if p.Access[Cloudflare] != nil && HasPathPrefix(master, p.Prefix) && (nearest == nil || len(p.Prefix) > len(nearest.Prefix)) {
			nearest = p
		}
	}
	access, rng := dr.Access, dr.Range
	if nearest != nil {
		access, rng = *nearest.Access[Cloudflare], nearest.Range
	}
	if keycloak && access != Closed {
		d.warnf(WarnKeycloakMasterRealm, rng, "Keycloak master realm on the cloudflare door",
			"route %q lets the cloudflare door reach %s/ as %s: Keycloak's master realm, where its admins sign in, belongs on the tailnet. Open only the household realm, like path \"/realms/home/\" { cloudflare = \"app\" }.",
			r.Name, master, access)
	}
}

// crossChecks are the rules that span routes and blocks.
func (d *decoder) crossChecks(cfg *Config) {
	for _, door := range Doors {
		hosts := map[string]*Route{}
		for _, r := range cfg.Routes {
			dr := r.Doors[door]
			if dr == nil || dr.Host == "" {
				continue
			}
			if prev, dup := hosts[dr.Host]; dup {
				d.errorf(dr.HostRange, "Duplicate host on the "+door.String()+" door",
					"%q is already the %s host of route %q (line %d); each host names one route on a door.",
					dr.Host, door, prev.Name, prev.Doors[door].HostRange.Start.Line)
				continue
			}
			hosts[dr.Host] = r
		}
	}
	// A door that listens where another door or a backend listens would
	// either fail to start or forward to itself.
	type addr struct {
		what string
		rng  hcl.Range
	}
	seen := map[string]addr{}
	claim := func(hostport, what string, rng hcl.Range) {
		host, port, err := net.SplitHostPort(hostport)
		if err != nil {
			return
		}
		for _, key := range listenKeys(host, port) {
			if prev, ok := seen[key]; ok {
				d.errorf(rng, "Addresses collide",
					"%s (%s) uses the same address as %s; give each its own port.", what, hostport, prev.what)
				return
			}
		}
		// Store under the normalised key (localhost → 127.0.0.1) that
		// listenKeys looks up, or "localhost:8750" would collide with nothing.
		seen[listenKeys(host, port)[0]] = addr{what, rng}
	}
	claim(cfg.Cloudflare.Listen, "cloudflare.listen", cfg.Cloudflare.ListenRange)
	if cfg.Metrics != nil {
		claim(cfg.Metrics.Listen, "metrics.listen", cfg.Metrics.ListenRange)
	}
	if l := cfg.LAN; l != nil {
		for _, a := range l.Listen {
			claim(a, "lan.listen", l.ListenRange)
		}
		for _, a := range l.RedirectListen {
			claim(a, "lan.redirect_listen", l.RedirectRange)
		}
	}
	for _, r := range cfg.Routes {
		if r.Backend.URL == nil || r.Backend.Socket != "" {
			continue
		}
		port := r.Backend.URL.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[r.Backend.URL.Scheme]
		}
		host := r.Backend.URL.Hostname()
		for _, key := range listenKeys(host, port) {
			if prev, ok := seen[key]; ok && strings.HasSuffix(prev.what, ".listen") {
				d.errorf(r.Range, "Addresses collide",
					"the backend of route %q (%s) is %s, so gatehouse would forward to itself; move the door or fix the backend.",
					r.Name, r.Backend.Raw, prev.what)
			}
		}
	}
	if o := cfg.OIDC; o != nil && o.CookieDomain != "" {
		// A browser drops a cookie whose Domain does not cover the host
		// that sets it: sign-in on such a host would loop forever.
		for _, r := range cfg.Routes {
			for _, door := range []Door{Cloudflare, LAN} {
				dr := r.Doors[door]
				if dr == nil || dr.Host == "" || !r.UsesAccess(door, Family) {
					continue
				}
				if dr.Host != o.CookieDomain && !strings.HasSuffix(dr.Host, "."+o.CookieDomain) {
					d.errorf(o.CookieDomainRange, "cookie_domain does not cover a family host",
						"the family host %q of route %q is not under cookie_domain %q, so browsers would refuse its session cookie; use a domain both are under, or leave cookie_domain out (one sign-in per host).",
						dr.Host, r.Name, o.CookieDomain)
				}
			}
		}
	}
	if o := cfg.OIDC; o != nil && o.PortalHost != "" {
		for _, r := range cfg.Routes {
			if dr := r.Doors[Cloudflare]; dr != nil && dr.Host == o.PortalHost {
				d.errorf(o.PortalHostRange, "portal_host is a route's host",
					"portal_host %q is the cloudflare host of route %q; the portal needs a host of its own (the portal is at /.gatehouse/ on every family host already).", o.PortalHost, r.Name)
			}
		}
	}
	tailnetRoutes := 0
	for _, r := range cfg.Routes {
		if r.Doors[Tailnet] != nil {
			tailnetRoutes++
			if cfg.Tailnet != nil && r.Doors[Tailnet].Node && r.Doors[Tailnet].Host == cfg.Tailnet.Hostname {
				d.errorf(r.Doors[Tailnet].Range, "Node name taken",
					"route %q would get a tailnet node named %q, which is the shared node's hostname; set host in its tailnet block or change tailnet.hostname.",
					r.Name, cfg.Tailnet.Hostname)
			}
		}
	}
	lanRoutes := 0
	for _, r := range cfg.Routes {
		if r.Doors[LAN] != nil {
			lanRoutes++
		}
	}
	if lanRoutes > 0 && cfg.LAN == nil {
		d.warnf(WarnLANRoutesWithoutLAN, cfg.Routes[0].Range, "LAN routes without a lan block",
			"%d routes have a lan door but there is no top-level lan block, so the LAN door is off.", lanRoutes)
	}
	if tailnetRoutes > 0 && cfg.Tailnet == nil {
		d.warnf(WarnTailnetRoutesWithoutTailnet, cfg.Routes[0].Range, "Tailnet routes without a tailnet block",
			"%d routes have a tailnet door but there is no top-level tailnet block, so the tailnet door is off.", tailnetRoutes)
	}
	for _, r := range cfg.Routes {
		if r.Limit != nil && r.Limit.MaxClients != 0 {
			d.errorf(r.Limit.Range, "max_clients in a route limit", "max_clients caps the whole gateway; set it in the top-level limit block.")
		}
	}
}

// listenKeys are the addresses a listener on host:port overlaps with: a
// wildcard host overlaps every host on the port.
func listenKeys(host, port string) []string {
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	// One spelling per address: ::ffff:127.0.0.1 is 127.0.0.1, 0:0::1 is ::1.
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.Unmap().String()
	}
	if n, err := strconv.Atoi(port); err == nil {
		port = strconv.Itoa(n) // "08750" is 8750
	}
	keys := []string{net.JoinHostPort(host, port)}
	for _, wild := range []string{"", "0.0.0.0", "::"} {
		keys = append(keys, net.JoinHostPort(wild, port))
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		keys = append(keys, net.JoinHostPort("127.0.0.1", port), net.JoinHostPort("::1", port))
	}
	return slices.Compact(keys)
}

// validHeaderName accepts names of letters, digits and '-' (no '_' or
// '.', which some backends read as '-').
func validHeaderName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// reservedHeader: headers with a meaning of their own, which a device
// token must not take over.
func reservedHeader(s string) bool {
	switch strings.ToLower(s) {
	case "authorization", "proxy-authorization", "cookie", "host", "connection", "upgrade", "te",
		"trailer", "transfer-encoding", "keep-alive", "proxy-connection", "content-length",
		"content-type", "accept", "user-agent", "origin", "referer", "x-forwarded-for", "forwarded":
		return true
	}
	return false
}

func validLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !validLabel(l) {
			return false
		}
	}
	return true
}
