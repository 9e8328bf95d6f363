package routes

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// The schema of routes.hcl. hclsyntax checks every body against these, so
// a misspelt name gets "Did you mean …?" with its position for free.
var (
	fileSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "domain", Required: true}, {Name: "acknowledge"}},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "cloudflare"}, {Type: "tailnet"}, {Type: "lan"}, {Type: "oidc"}, {Type: "metrics"},
			{Type: "limit"}, {Type: "server"}, {Type: "route", LabelNames: []string{"name"}},
		},
	}
	cloudflareSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "listen"}, {Name: "trusted_proxies"},
	}}
	serverSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "read_header_timeout"}, {Name: "idle_timeout"}, {Name: "max_header_bytes"},
		{Name: "stall_timeout"}, {Name: "upstream_idle_timeout"}, {Name: "shutdown_timeout"},
		{Name: "response_timeout"},
	}}
	tailnetSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "hostname"}, {Name: "state_dir"}, {Name: "auth_key_file"}, {Name: "client_secret_file"},
		{Name: "control_url"}, {Name: "ephemeral"}, {Name: "tags"}, {Name: "admins"},
		{Name: "admin_capability"}, {Name: "log_upload"}, {Name: "verbose"},
	}}
	oidcSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "issuer", Required: true}, {Name: "client_id", Required: true},
		{Name: "client_secret_file", Required: true}, {Name: "scopes"}, {Name: "cookie_domain"},
		{Name: "groups_from_id_token"}, {Name: "groups_from_access_token"},
		{Name: "session_lifetime"}, {Name: "refresh_interval"}, {Name: "cookie_key_file"},
		{Name: "device_token_header"}, {Name: "outage_grace"}, {Name: "device_refresh_interval"},
		{Name: "portal_host"},
	}}
	healthSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "enabled"}, {Name: "path"}, {Name: "interval"}, {Name: "timeout"},
	}}
	metricsSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "listen", Required: true}}}
	limitSchema   = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "rate"}, {Name: "burst"}, {Name: "total_rate"}, {Name: "total_burst"},
		{Name: "concurrent"}, {Name: "max_clients"},
	}}
	banSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "failures", Required: true}, {Name: "window", Required: true},
		{Name: "ban_time", Required: true}, {Name: "statuses"},
	}}
	routeSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "backend", Required: true}, {Name: "allow_non_loopback"}, {Name: "max_body"},
			{Name: "preset"}, {Name: "response_timeout"}, {Name: "description"}, {Name: "icon"},
		},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "tailnet"}, {Type: "cloudflare"}, {Type: "lan"}, {Type: "limit"}, {Type: "health"},
			{Type: "path", LabelNames: []string{"prefix"}},
		},
	}
	doorSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "host"}, {Name: "access", Required: true}, {Name: "groups"}, {Name: "identity_headers"},
	}}
	tailnetDoorSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "host"}, {Name: "access", Required: true}, {Name: "node"}, {Name: "identity_headers"},
	}}
	pathSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "tailnet"}, {Name: "cloudflare"}, {Name: "lan"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "limit"}, {Type: "ban"}},
	}
)

// decoder turns HCL values into Go values, collecting every diagnostic
// instead of stopping at the first.
type decoder struct {
	diags hcl.Diagnostics
	// familyWithoutSignIn collects the routes that use family access in a
	// file without an oidc block, for one warning naming them all.
	familyWithoutSignIn []routeUse
}

func (d *decoder) errorf(rng hcl.Range, summary, format string, args ...any) {
	r := rng
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: &r,
	})
}

func (d *decoder) content(body hcl.Body, schema *hcl.BodySchema) *hcl.BodyContent {
	c, diags := body.Content(schema)
	d.diags = append(d.diags, diags...)
	return c
}

// single returns the only block of a type, complaining about repeats.
func (d *decoder) single(blocks hcl.Blocks, typ, where string) *hcl.Block {
	var first *hcl.Block
	for _, b := range blocks {
		if b.Type != typ {
			continue
		}
		if first != nil {
			d.errorf(b.DefRange, "Duplicate "+typ+" block",
				"%s already has a %s block at line %d; merge the two into one.", where, typ, first.DefRange.Start.Line)
			continue
		}
		first = b
	}
	return first
}

func (d *decoder) value(attr *hcl.Attribute, want cty.Type, what string) (cty.Value, bool) {
	v, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		d.diags = append(d.diags, diags...)
		return cty.NilVal, false
	}
	if v.IsNull() {
		// A null would otherwise pass as "not set", even for a required
		// attribute such as backend.
		d.errorf(attr.Expr.Range(), "Wrong type for "+attr.Name,
			"%s must be %s, not null.", attr.Name, what)
		return cty.NilVal, false
	}
	cv, err := convert.Convert(v, want)
	if err != nil || !cv.IsWhollyKnown() {
		d.errorf(attr.Expr.Range(), "Wrong type for "+attr.Name,
			"%s must be %s.", attr.Name, what)
		return cty.NilVal, false
	}
	if cv.CanIterateElements() {
		// A null element would panic in AsString or AsBigFloat.
		for it := cv.ElementIterator(); it.Next(); {
			if _, e := it.Element(); e.IsNull() {
				d.errorf(attr.Expr.Range(), "Wrong type for "+attr.Name,
					"%s must be %s, without nulls.", attr.Name, what)
				return cty.NilVal, false
			}
		}
	}
	return cv, true
}

func (d *decoder) str(attrs hcl.Attributes, name string) (string, hcl.Range, bool) {
	a, ok := attrs[name]
	if !ok {
		return "", hcl.Range{}, false
	}
	v, ok := d.value(a, cty.String, "a string in double quotes")
	if !ok {
		return "", a.Expr.Range(), false
	}
	return v.AsString(), a.Expr.Range(), true
}

func (d *decoder) strList(attrs hcl.Attributes, name string) ([]string, hcl.Range, bool) {
	a, ok := attrs[name]
	if !ok {
		return nil, hcl.Range{}, false
	}
	out, ok := d.strings(a, `a list of strings, like ["a", "b"]`)
	return out, a.Expr.Range(), ok
}

// strings reads a list of strings; what names the expected value in the
// error.
func (d *decoder) strings(a *hcl.Attribute, what string) ([]string, bool) {
	v, ok := d.value(a, cty.List(cty.String), what)
	if !ok {
		return nil, false
	}
	var out []string
	for _, e := range v.AsValueSlice() {
		out = append(out, e.AsString())
	}
	return out, true
}

// strOrList reads an attribute that is one string or a list of strings.
func (d *decoder) strOrList(attrs hcl.Attributes, name, what string) ([]string, hcl.Range, bool) {
	a, ok := attrs[name]
	if !ok {
		return nil, hcl.Range{}, false
	}
	if v, diags := a.Expr.Value(nil); !diags.HasErrors() && v.Type() == cty.String {
		s, rng, ok := d.str(attrs, name)
		return []string{s}, rng, ok
	}
	out, ok := d.strings(a, what)
	return out, a.Expr.Range(), ok
}

func (d *decoder) boolean(attrs hcl.Attributes, name string) bool {
	a, ok := attrs[name]
	if !ok {
		return false
	}
	v, ok := d.value(a, cty.Bool, "true or false")
	return ok && v.True()
}

func (d *decoder) duration(attrs hcl.Attributes, name string, def time.Duration) time.Duration {
	s, rng, ok := d.str(attrs, name)
	if !ok {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		d.errorf(rng, "Invalid duration", `%s must be a positive duration like "30s" or "2m", not %q.`, name, s)
		return def
	}
	return v
}

// size reads a byte count written as a number or as "100MB", "1GiB", ….
func (d *decoder) size(attrs hcl.Attributes, name string) (int64, hcl.Range, bool) {
	a, ok := attrs[name]
	if !ok {
		return 0, hcl.Range{}, false
	}
	v, ok := d.value(a, cty.String, `a size like "100MB", "4GiB" or a number of bytes`)
	if !ok {
		return 0, a.Expr.Range(), false
	}
	n, err := parseSize(v.AsString())
	if err != nil {
		d.errorf(a.Expr.Range(), "Invalid size", `%s: %v; write a size like "100MB", "4GiB" or a number of bytes.`, name, err)
		return 0, a.Expr.Range(), false
	}
	return n, a.Expr.Range(), true
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	if f*float64(mult) > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(f * float64(mult)), nil
}

// parseRate reads "10/s", "100/min", "1000/h" or a plain number per second.
func parseRate(s string) (float64, error) {
	num, unit, found := strings.Cut(strings.TrimSpace(s), "/")
	per := 1.0
	if found {
		switch strings.TrimSpace(unit) {
		case "s", "sec", "second":
		case "m", "min", "minute":
			per = 60
		case "h", "hour":
			per = 3600
		default:
			return 0, fmt.Errorf("unknown unit %q (use s, min or h)", unit)
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || !(f > 0) || math.IsInf(f, 0) { // !(f > 0) also rejects NaN
		return 0, fmt.Errorf("%q is not a positive number", num)
	}
	return f / per, nil
}

func (d *decoder) rateAttr(attrs hcl.Attributes, name string) float64 {
	a, ok := attrs[name]
	if !ok {
		return 0
	}
	v, ok := d.value(a, cty.String, `a rate like "10/s" or "100/min"`)
	if !ok {
		return 0
	}
	r, err := parseRate(v.AsString())
	if err != nil {
		d.errorf(a.Expr.Range(), "Invalid rate", `%s %q: %v; write it like "10/s", "100/min" or "1000/h".`, name, v.AsString(), err)
	}
	return r
}

func (d *decoder) count(attrs hcl.Attributes, name string, lo, hi float64) int {
	a, ok := attrs[name]
	if !ok {
		return 0
	}
	v, ok := d.value(a, cty.Number, "a whole number")
	if !ok {
		return 0
	}
	f, _ := v.AsBigFloat().Float64()
	if f < lo || f > hi || f != math.Trunc(f) {
		d.errorf(a.Expr.Range(), "Invalid "+name, "%s must be a whole number from %.0f to %.0f.", name, lo, hi)
		return 0
	}
	return int(f)
}

// limit reads a limit block; top says whether it is the top-level one,
// the only place max_clients belongs.
func (d *decoder) limit(b *hcl.Block) *Limit {
	if b == nil {
		return nil
	}
	c := d.content(b.Body, limitSchema)
	l := &Limit{Range: b.DefRange}
	if c == nil {
		return l
	}
	l.Rate = d.rateAttr(c.Attributes, "rate")
	l.TotalRate = d.rateAttr(c.Attributes, "total_rate")
	l.Burst = d.count(c.Attributes, "burst", 1, 1e9)
	l.TotalBurst = d.count(c.Attributes, "total_burst", 1, 1e9)
	l.Concurrent = d.count(c.Attributes, "concurrent", 1, 1e6)
	l.MaxClients = d.count(c.Attributes, "max_clients", 64, 1e8)
	if len(c.Attributes) == 0 {
		d.errorf(b.DefRange, "Empty limit", "a limit block needs at least one of rate, total_rate or concurrent.")
	}
	if _, hasRate := c.Attributes["rate"]; l.Burst > 0 && !hasRate {
		d.errorf(c.Attributes["burst"].Expr.Range(), "Burst without rate", "burst sizes a per-client rate; set rate too.")
	}
	return l
}

func (d *decoder) ban(b *hcl.Block) *Ban {
	if b == nil {
		return nil
	}
	c := d.content(b.Body, banSchema)
	bn := &Ban{Range: b.DefRange, Statuses: []int{401, 403}}
	if c == nil {
		return bn
	}
	bn.Failures = d.count(c.Attributes, "failures", 1, 1e6)
	bn.Window = d.duration(c.Attributes, "window", 10*time.Minute)
	bn.BanFor = d.duration(c.Attributes, "ban_time", time.Hour)
	if a, ok := c.Attributes["statuses"]; ok {
		v, ok := d.value(a, cty.List(cty.Number), "a list of HTTP status codes, like [401, 403]")
		if ok {
			bn.Statuses = nil
			for _, e := range v.AsValueSlice() {
				f, _ := e.AsBigFloat().Float64()
				if f < 400 || f > 599 || f != math.Trunc(f) {
					d.errorf(a.Expr.Range(), "Invalid status", "statuses are 4xx or 5xx response codes that mean a failed login, like 401.")
					continue
				}
				bn.Statuses = append(bn.Statuses, int(f))
			}
		}
	}
	return bn
}
