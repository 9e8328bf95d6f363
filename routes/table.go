package routes

import (
	"path"
	"slices"
	"strings"
)

// Table is a compiled, immutable route table. A running gateway holds one
// behind an atomic pointer and replaces it whole on reload, so lookups take
// no lock.
type Table struct {
	Config *Config
	hosts  [numDoors]map[string]*entry
}

type entry struct {
	route  *Route
	access Access
	// rules are the route's path rules, longest prefix first.
	rules []*PathRule
}

// Match is the outcome of a lookup. A zero Match (nil Route) means nothing
// is reachable there, and must be answered exactly like an unknown host.
type Match struct {
	Route  *Route
	Access Access
	// Rule is the most specific path rule under which the path falls, if
	// any; it carries per-path settings such as limits.
	Rule *PathRule
}

// Compile builds the lookup structure for a validated Config.
func Compile(cfg *Config) *Table {
	t := &Table{Config: cfg}
	for _, door := range Doors {
		t.hosts[door] = map[string]*entry{}
	}
	for _, r := range cfg.Routes {
		rules := slices.Clone(r.Paths)
		slices.SortStableFunc(rules, func(a, b *PathRule) int { return len(b.Prefix) - len(a.Prefix) })
		for _, door := range Doors {
			dr := r.Doors[door]
			if dr == nil {
				continue
			}
			t.hosts[door][dr.Host] = &entry{route: r, access: dr.Access, rules: rules}
		}
	}
	return t
}

// Match finds the route and access level for a request. host is the raw
// Host header; cleanPath must come from CleanPath.
func (t *Table) Match(door Door, host, cleanPath string) Match {
	if int(door) >= len(t.hosts) {
		return Match{}
	}
	host = NormalizeHost(host)
	if door == Tailnet {
		// A tailnet name is the node's first DNS label: the tailnet's
		// MagicDNS suffix is the control server's business, not ours.
		if i := strings.IndexByte(host, '.'); i >= 0 {
			host = host[:i]
		}
	}
	e := t.hosts[door][host]
	if e == nil {
		return Match{}
	}
	m := Match{Route: e.route, Access: e.access}
	accessSet := false
	for _, pr := range e.rules {
		if !HasPathPrefix(cleanPath, pr.Prefix) {
			continue
		}
		if m.Rule == nil {
			m.Rule = pr
		}
		if a := pr.Access[door]; a != nil && !accessSet {
			m.Access, accessSet = *a, true
		}
	}
	if m.Access == Closed {
		return Match{}
	}
	return m
}

// HasHost reports whether host names a route on a door, whatever its
// access, or is the family portal's host on the Cloudflare door
// (gatehouse's own endpoints answer only on hosts in the table).
func (t *Table) HasHost(door Door, host string) bool {
	if int(door) >= len(t.hosts) {
		return false
	}
	host = NormalizeHost(host)
	if door == Cloudflare && t.IsPortalHost(host) {
		return true
	}
	_, ok := t.hosts[door][host]
	return ok
}

// IsPortalHost reports whether host (normalized) is oidc.portal_host.
func (t *Table) IsPortalHost(host string) bool {
	o := t.Config.OIDC
	return o != nil && o.PortalHost != "" && host == o.PortalHost
}

// Routes lists the routes of the table in file order.
func (t *Table) Routes() []*Route { return t.Config.Routes }

// HasPathPrefix reports whether p lies at or below prefix, segment-wise:
// "/admin" covers "/admin", "/admin/x" and "/admin;jsessionid=1" but not
// "/administrator". The comparison ignores ASCII case because some backends
// (ASP.NET, for one) do, and a closed path must stay closed in any case.
func HasPathPrefix(p, prefix string) bool {
	if len(p) < len(prefix) || !strings.EqualFold(p[:len(prefix)], prefix) {
		return false
	}
	if len(p) == len(prefix) {
		return true
	}
	switch p[len(prefix)] {
	case '/', ';', '#':
		return true
	}
	return false
}

// NormalizeHost lower-cases a Host header and drops its port and trailing
// dot, allocating only when it must.
func NormalizeHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// AmbiguousPath reports whether a decoded path has a segment whose meaning
// differs between servers: one that starts with ";" (servlet containers and
// some WebDAV servers drop ";params" and see an empty segment, so "/;/admin"
// is their "/admin") or is "." or ".." followed by ";params" (their "." and
// "..", a legal file name "..;tmp" elsewhere). Such a path is refused, never
// rewritten: rewriting it would send some backend a different resource than
// the one its client named — "DELETE …/Sub/..;tmp" would become a DELETE of
// the parent folder (invariant 9, docs/ARCHITECTURE.md).
func AmbiguousPath(p string) bool {
	if strings.IndexByte(p, ';') < 0 {
		return false
	}
	p = strings.ReplaceAll(p, `\`, "/")
	for seg := range strings.SplitSeq(p, "/") {
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			if name := seg[:i]; name == "" || name == "." || name == ".." {
				return true
			}
		}
	}
	return false
}

// CleanPath turns a decoded request path into the one form that is both
// decided on and sent to the backend: backslashes become slashes (some
// backends treat them so), dot segments and repeated slashes are resolved,
// and a trailing slash is kept. Callers refuse an AmbiguousPath first. It
// allocates only for paths that are not already clean.
func CleanPath(p string) string {
	if isClean(p) {
		return p
	}
	q := strings.ReplaceAll(p, `\`, "/")
	trailing := strings.HasSuffix(q, "/")
	q = path.Clean("/" + q)
	if trailing && q != "/" {
		q += "/"
	}
	return q
}

func isClean(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			return false
		case '/':
			if i+1 < len(p) && p[i+1] == '/' {
				return false
			}
		case '.':
			if p[i-1] != '/' {
				continue
			}
			rest := p[i+1:]
			if rest == "" || rest[0] == '/' || rest == "." || strings.HasPrefix(rest, "./") {
				return false
			}
		}
	}
	return true
}
