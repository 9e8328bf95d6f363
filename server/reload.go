package server

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"gatehouse/dashboard"

	"gatehouse/routes"
)

// Applies says when a changed setting takes effect in a running gateway.
type Applies uint8

const (
	// Now: the reload puts it in force for every new request.
	Now Applies = iota
	// AtRestart: the running gateway keeps the old value until it is
	// restarted (a listener's address, an http.Server's limits, a tailnet
	// node's identity); the reload says so by name.
	AtRestart
)

func (a Applies) String() string {
	if a == AtRestart {
		return "after restart"
	}
	return "at once"
}

// A Setting is one row of the reload table: a routes.hcl setting, when a
// change to it applies, and what carries it.
type Setting struct {
	Name    string
	Applies Applies
	How     string
	value   func(*routes.Config) any
}

// Settings is the reload table, the one place that decides what a reload
// applies. The reload's log, `gatehouse check` and docs/ARCHITECTURE.md
// ("Reload") are all made from it; TestReloadTable changes every setting
// in a running gateway and checks both the log and the effect.
var Settings = []Setting{
	{"domain", Now, "the compiled route table", func(c *routes.Config) any { return c.Domain }},
	{"route", Now, "the compiled route table; tailnet nodes of routes start and stop; new LAN hosts get certificates", func(c *routes.Config) any { return c.Routes }},
	{"cloudflare.listen", AtRestart, "the door's listener is opened once", func(c *routes.Config) any { return c.Cloudflare.Listen }},
	{"cloudflare.trusted_proxies", Now, "read per request", func(c *routes.Config) any { return c.Cloudflare.TrustedProxies }},
	{"tailnet.admins", Now, "read per request", tailnetField(func(t *routes.TailnetConfig) any { return t.Admins })},
	{"tailnet.admin_capability", Now, "read per request", tailnetField(func(t *routes.TailnetConfig) any { return t.AdminCapability })},
	{"tailnet", AtRestart, "a tailnet block added or removed: the tailnet door starts and stops with the process", func(c *routes.Config) any { return c.Tailnet != nil }},
	{"tailnet.hostname", AtRestart, "the shared node's name, its identity on the tailnet", tailnetField(func(t *routes.TailnetConfig) any { return t.Hostname })},
	{"tailnet.state_dir", AtRestart, "running nodes keep their state", tailnetField(func(t *routes.TailnetConfig) any { return t.StateDir })},
	{"tailnet.auth_key_file", AtRestart, "used when a node joins", tailnetField(func(t *routes.TailnetConfig) any { return t.AuthKeyFile })},
	{"tailnet.client_secret_file", AtRestart, "used when a node joins", tailnetField(func(t *routes.TailnetConfig) any { return t.ClientSecretFile })},
	{"tailnet.control_url", AtRestart, "running nodes keep their control server", tailnetField(func(t *routes.TailnetConfig) any { return t.ControlURL })},
	{"tailnet.ephemeral", AtRestart, "decided when a node joins", tailnetField(func(t *routes.TailnetConfig) any { return t.Ephemeral })},
	{"tailnet.tags", AtRestart, "advertised when a node joins", tailnetField(func(t *routes.TailnetConfig) any { return t.Tags })},
	{"tailnet.log_upload", AtRestart, "set for the process before the first node starts", tailnetField(func(t *routes.TailnetConfig) any { return t.LogUpload })},
	{"tailnet.verbose", AtRestart, "set for the process before the first node starts", tailnetField(func(t *routes.TailnetConfig) any { return t.Verbose })},
	{"lan", AtRestart, "a lan block added or removed: the LAN door opens and shuts with the process", func(c *routes.Config) any { return c.LAN != nil }},
	{"lan.listen", AtRestart, "the door's listeners are opened once", lanField(func(l *routes.LANConfig) any { return l.Listen })},
	{"lan.redirect_listen", AtRestart, "the redirect listeners are opened once", lanField(func(l *routes.LANConfig) any { return l.RedirectListen })},
	{"lan.networks", AtRestart, "the listeners' network filter is built when they open", lanField(func(l *routes.LANConfig) any { return l.Networks })},
	{"lan.state_dir", AtRestart, "certificate storage is opened once", lanField(func(l *routes.LANConfig) any { return l.StateDir })},
	{"lan.acme_ca", AtRestart, "the ACME issuer is set up once", lanField(func(l *routes.LANConfig) any { return l.ACMECA })},
	{"lan.acme_email", AtRestart, "the ACME issuer is set up once", lanField(func(l *routes.LANConfig) any { return l.ACMEEmail })},
	{"lan.dns_token_file", AtRestart, "the solver keeps the file's name (its contents are read on every attempt)", lanField(func(l *routes.LANConfig) any { return l.DNSTokenFile })},
	{"lan.certificates", AtRestart, "the names managed are chosen at start", lanField(func(l *routes.LANConfig) any { return l.Wildcard })},
	{"oidc", Now, "family sign-in is rebuilt, keeping the provider it discovered and its revocations when the issuer is the same", func(c *routes.Config) any { return c.OIDC }},
	{"metrics", AtRestart, "the metrics listener is opened once", func(c *routes.Config) any { return c.Metrics }},
	{"limit", Now, "limiters are rebuilt (unchanged ones keep their clients)", func(c *routes.Config) any {
		if c.Limit == nil {
			return nil
		}
		l := *c.Limit
		l.MaxClients = 0
		return l
	}},
	{"limit.max_clients", AtRestart, "the size of the client store, made once", func(c *routes.Config) any { return maxClients(c) }},
	{"server.read_header_timeout", AtRestart, "a setting of the doors' http.Server", func(c *routes.Config) any { return c.Server.ReadHeaderTimeout }},
	{"server.idle_timeout", AtRestart, "a setting of the doors' http.Server", func(c *routes.Config) any { return c.Server.IdleTimeout }},
	{"server.max_header_bytes", AtRestart, "a setting of the doors' http.Server", func(c *routes.Config) any { return c.Server.MaxHeaderBytes }},
	{"server.stall_timeout", Now, "read per request", func(c *routes.Config) any { return c.Server.StallTimeout }},
	{"server.upstream_idle_timeout", Now, "new backend connections follow it; idle ones close by the old value", func(c *routes.Config) any { return c.Server.UpstreamIdleTimeout }},
	{"server.response_timeout", Now, "read when a route's upstream is built, on every reload", func(c *routes.Config) any { return c.Server.ResponseTimeout }},
	{"server.shutdown_timeout", Now, "read when the drain begins", func(c *routes.Config) any { return c.Server.ShutdownTimeout }},
}

func tailnetField(f func(*routes.TailnetConfig) any) func(*routes.Config) any {
	return func(c *routes.Config) any {
		if c.Tailnet == nil {
			return nil
		}
		return f(c.Tailnet)
	}
}

func lanField(f func(*routes.LANConfig) any) func(*routes.Config) any {
	return func(c *routes.Config) any {
		if c.LAN == nil {
			return nil
		}
		return f(c.LAN)
	}
}

// Change is a setting whose value differs between two configurations.
type Change struct {
	Setting
	Old, New any
}

// Diff lists the settings that differ between the running configuration
// and a new one, in the reload table's order. Positions in the file
// (moving a block, adding a comment) are not changes.
func Diff(old, new *routes.Config) []Change {
	var out []Change
	tailnetChanged := (old.Tailnet == nil) != (new.Tailnet == nil)
	lanChanged := (old.LAN == nil) != (new.LAN == nil)
	for _, s := range Settings {
		if tailnetChanged && strings.HasPrefix(s.Name, "tailnet.") || lanChanged && strings.HasPrefix(s.Name, "lan.") {
			continue // the block as a whole is the change
		}
		a, b := s.value(old), s.value(new)
		if !equalIgnoringRanges(reflect.ValueOf(a), reflect.ValueOf(b)) {
			out = append(out, Change{Setting: s, Old: a, New: b})
		}
	}
	return out
}

// RestartOnly names the settings a running gateway takes only at restart.
func RestartOnly() []string {
	var out []string
	for _, s := range Settings {
		if s.Applies == AtRestart {
			out = append(out, s.Name)
		}
	}
	return out
}

// WriteReloadTable writes the reload table as Markdown (docs/ARCHITECTURE.md
// carries it; a test keeps the two equal).
func WriteReloadTable(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| setting | a change applies | because |\n|---|---|---|\n")
	for _, s := range Settings {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.Name, s.Applies, s.How)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

var rangeType = reflect.TypeFor[hcl.Range]()

// equalIgnoringRanges is reflect.DeepEqual that skips hcl.Range values
// (where in the file a setting was written) and takes a nil slice or map
// as equal to an empty one.
func equalIgnoringRanges(a, b reflect.Value) bool {
	if !a.IsValid() || !b.IsValid() {
		return a.IsValid() == b.IsValid()
	}
	if a.Type() != b.Type() {
		return false
	}
	if a.Type() == rangeType {
		return true
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return a.Pointer() == b.Pointer() || equalIgnoringRanges(a.Elem(), b.Elem())
	case reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equalIgnoringRanges(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if !equalIgnoringRanges(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !equalIgnoringRanges(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			if !equalIgnoringRanges(a.MapIndex(k), b.MapIndex(k)) {
				return false
			}
		}
		return true
	case reflect.Func:
		return a.IsNil() && b.IsNil()
	}
	return a.Equal(b)
}

// Reload reads routes.hcl again, validates it fully and puts it in force.
// A file with errors changes nothing: the running table stays, and the
// log, the metrics and the returned error say why (invariant 5,
// docs/ARCHITECTURE.md). Settings that apply only at restart are named.
func (s *Server) Reload(why string) (err error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	_ = s.opt.Notify.Reloading()
	defer func() {
		_ = s.opt.Notify.Ready() // also after a rejected file: the old table serves
		outcome := "ok"
		if err != nil {
			outcome = "rejected"
		}
		s.metrics.Reloads.WithLabelValues(outcome).Inc()
		if s.opt.Reloaded != nil {
			s.opt.Reloaded(err)
		}
	}()
	record := dashboard.Reload{At: time.Now(), Why: why}
	defer func() {
		record.OK = err == nil
		s.reloadLog.Add(record)
	}()
	cfg, _, diags := routes.Load(s.opt.ConfigPath)
	if cfg == nil {
		for _, d := range diags {
			record.Diagnostics = append(record.Diagnostics, routes.FormatDiagnostic(d))
		}
		for _, d := range diags {
			level := s.log.Error
			if d.Severity != hcl.DiagError {
				level = s.log.Warn
			}
			level("reload rejected: "+routes.FormatDiagnostic(d), "why", why)
		}
		return fmt.Errorf("%w: %s: %w", errRejected, s.opt.ConfigPath, diags)
	}
	for _, d := range cfg.Warnings {
		s.log.Warn(routes.FormatDiagnostic(d))
	}
	for _, c := range Diff(s.gw.Table().Config, cfg) {
		record.Changed = append(record.Changed, c.Name+": "+map[Applies]string{Now: "applied", AtRestart: "applies after restart"}[c.Applies])
		if c.Applies == AtRestart {
			s.log.Warn("setting changed; it applies after restart, the running value stays", "setting", c.Name, "running", display(c.Old), "file", display(c.New))
		} else {
			s.log.Info("setting changed; applied", "setting", c.Name)
		}
	}
	t := routes.Compile(cfg)
	s.gw.Swap(t)
	s.health.Sync(cfg.Routes)
	if s.nodes != nil {
		s.nodes.Sync(t)
		s.metrics.TailnetNodes.WithLabelValues("kept").Set(float64(len(s.nodes.Running())))
	}
	s.signIns.update(cfg.OIDC)
	if s.lan != nil && cfg.LAN != nil {
		// New LAN hosts get their certificates; the rest of the lan block
		// waits for a restart (the reload table).
		if err := s.lan.mgr.Manage(context.Background(), routes.LANNames(cfg)); err != nil {
			s.log.Error("LAN certificates for the new hosts", "err", err)
		}
	}
	s.log.Info("route table reloaded", "why", why, "summary", routes.Summary(cfg))
	return nil
}

// display renders a setting's value for the log: scalars as they are,
// blocks only as present or absent (a block may hold file names of
// secrets, never their contents, but the log need not list it).
func display(v any) string {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || rv.Kind() == reflect.Pointer && rv.IsNil() {
		return "none"
	}
	switch rv.Kind() {
	case reflect.Pointer, reflect.Struct, reflect.Map:
		return "set"
	}
	return fmt.Sprint(v)
}
