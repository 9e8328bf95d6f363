// Package health checks every route's backend on its own schedule (a TCP
// connect, or a GET of the route's health.path), so the gateway knows a
// service is down before a visitor finds out, and since when. It logs
// each change once (down, up again), never per request, and exports
// gatehouse_backend_up and gatehouse_backend_check_seconds.
package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"gatehouse/metrics"
	"gatehouse/routes"
)

// State is what the last checks of one route's backend found.
type State struct {
	Route   string
	Target  string // what is checked: "tcp 127.0.0.1:8080", "GET http://127.0.0.1:8080/healthz"
	Off     bool   // health { enabled = false }: never checked
	Checked bool   // at least one check has finished
	Up      bool
	// Since is when the backend was first seen in its current state.
	Since     time.Time
	LastCheck time.Time
	Latency   time.Duration // of the last check
	LastError string        // of the last failed check; kept after it comes back
}

// Options configure a Checker.
type Options struct {
	Log     *slog.Logger
	Metrics *metrics.Metrics // nil: none
	// Changed, if set, is called after every check that changed a
	// route's state (tests wait on it).
	Changed func(State)
}

// Checker runs the checks of the routes it was last synced with.
type Checker struct {
	opt Options
	ctx context.Context
	end context.CancelFunc

	mu     sync.Mutex
	checks map[string]*check // by route name
	wg     sync.WaitGroup
}

type check struct {
	key    checkKey
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	state State
}

// checkKey is everything a check depends on: a route whose key is
// unchanged across a reload keeps its check and its history.
type checkKey struct {
	backend, socket   string
	off               bool
	path              string
	interval, timeout time.Duration
}

func keyOf(r *routes.Route) checkKey {
	return checkKey{r.Backend.Raw, r.Backend.Socket, r.Health.Off, r.Health.Path, r.Health.Interval, r.Health.Timeout}
}

// New returns a Checker with no routes; Sync starts their checks.
func New(opt Options) *Checker {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	ctx, end := context.WithCancel(context.Background())
	return &Checker{opt: opt, ctx: ctx, end: end, checks: map[string]*check{}}
}

// Sync puts the checks of rs in force: new routes start, removed ones
// stop, a route whose backend or health block changed starts afresh.
func (c *Checker) Sync(rs []*routes.Route) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		return
	}
	want := map[string]*routes.Route{}
	for _, r := range rs {
		want[r.Name] = r
	}
	for name, ch := range c.checks {
		if r, ok := want[name]; ok && keyOf(r) == ch.key {
			continue
		}
		ch.cancel()
		<-ch.done
		delete(c.checks, name)
		if m := c.opt.Metrics; m != nil {
			m.BackendUp.DeleteLabelValues(name)
			m.BackendCheck.DeleteLabelValues(name)
		}
	}
	for name, r := range want {
		if _, ok := c.checks[name]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(c.ctx)
		ch := &check{key: keyOf(r), cancel: cancel, done: make(chan struct{}),
			state: State{Route: name, Target: target(r), Off: r.Health.Off}}
		c.checks[name] = ch
		if r.Health.Off {
			close(ch.done)
			continue
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer close(ch.done)
			c.run(ctx, r, ch)
		}()
	}
}

// Close stops every check.
func (c *Checker) Close() {
	c.end()
	c.wg.Wait()
}

// State is the route's state; false for a route not in the table.
func (c *Checker) State(route string) (State, bool) {
	c.mu.Lock()
	ch := c.checks[route]
	c.mu.Unlock()
	if ch == nil {
		return State{}, false
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.state, true
}

// States lists every route's state by route name.
func (c *Checker) States() []State {
	c.mu.Lock()
	names := make([]string, 0, len(c.checks))
	for n := range c.checks {
		names = append(names, n)
	}
	c.mu.Unlock()
	sort.Strings(names)
	out := make([]State, 0, len(names))
	for _, n := range names {
		if st, ok := c.State(n); ok {
			out = append(out, st)
		}
	}
	return out
}

// DownSince reports whether the route's backend failed its last check,
// and since when it has not answered.
func (c *Checker) DownSince(route string) (time.Time, bool) {
	st, ok := c.State(route)
	if !ok || !st.Checked || st.Up {
		return time.Time{}, false
	}
	return st.Since, true
}

func (c *Checker) run(ctx context.Context, r *routes.Route, ch *check) {
	probe := newProbe(r)
	defer probe.close()
	tick := time.NewTicker(r.Health.Interval)
	defer tick.Stop()
	for {
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, r.Health.Timeout)
		err := probe.check(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		c.record(ch, start, time.Since(start), err)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// record stores a check's outcome and logs a change of state, once.
func (c *Checker) record(ch *check, at time.Time, took time.Duration, err error) {
	ch.mu.Lock()
	prev := ch.state
	st := prev
	st.Checked, st.Up, st.LastCheck, st.Latency = true, err == nil, at, took
	if err != nil {
		st.LastError = err.Error()
	}
	changed := !prev.Checked || prev.Up != st.Up
	if changed {
		st.Since = at
	}
	ch.state = st
	ch.mu.Unlock()

	if m := c.opt.Metrics; m != nil {
		up := 0.0
		if st.Up {
			up = 1
		}
		m.BackendUp.WithLabelValues(st.Route).Set(up)
		m.BackendCheck.WithLabelValues(st.Route).Set(took.Seconds())
	}
	if !changed {
		return
	}
	switch {
	case !st.Up:
		c.opt.Log.Warn("backend not answering", "route", st.Route, "check", st.Target, "err", err)
	case prev.Checked:
		c.opt.Log.Info("backend answering again", "route", st.Route, "check", st.Target, "down_for", at.Sub(prev.Since).Round(time.Second))
	default:
		c.opt.Log.Debug("backend answering", "route", st.Route, "check", st.Target)
	}
	if c.opt.Changed != nil {
		c.opt.Changed(st)
	}
}

// target names what a route's check does, for the dashboard and the log.
func target(r *routes.Route) string {
	if r.Health.Off {
		return "off"
	}
	if r.Health.Path != "" {
		u := *r.Backend.URL
		u.Path, u.RawQuery = singleJoin(u.Path, r.Health.Path), ""
		if r.Backend.Socket != "" {
			return "GET " + r.Health.Path + " on unix:" + r.Backend.Socket
		}
		return "GET " + u.String()
	}
	network, addr := dialTarget(r.Backend)
	return network + " " + addr
}

func singleJoin(base, p string) string {
	if len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	return base + p
}

// dialTarget is the network address of a backend, as the proxy dials it.
func dialTarget(b routes.Backend) (network, addr string) {
	if b.Socket != "" {
		return "unix", b.Socket
	}
	host, port := b.URL.Hostname(), b.URL.Port()
	if port == "" {
		port = "80"
		if b.URL.Scheme == "https" {
			port = "443"
		}
	}
	return "tcp", net.JoinHostPort(host, port)
}

type probe struct {
	network, addr string
	url           string // "" for a TCP connect
	client        *http.Client
	dialer        net.Dialer
}

func newProbe(r *routes.Route) *probe {
	p := &probe{}
	p.network, p.addr = dialTarget(r.Backend)
	if r.Health.Path == "" {
		return p
	}
	u := *r.Backend.URL
	u.Path, u.RawQuery = singleJoin(u.Path, r.Health.Path), ""
	p.url = u.String()
	tr := &http.Transport{
		// Always the backend's own address, however the URL's host is
		// spelled (a unix socket's URL names the route, not a host).
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return p.dialer.DialContext(ctx, p.network, p.addr)
		},
		// Loopback backends often serve HTTPS with a certificate of their
		// own making; a health check asks whether it answers, not who it is.
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		DisableKeepAlives: true,
		Proxy:             nil,
	}
	p.client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return p
}

func (p *probe) close() {
	if p.client != nil {
		p.client.CloseIdleConnections()
	}
}

// errStatus is a health path that answered with a server error.
var errStatus = errors.New("health path answered")

func (p *probe) check(ctx context.Context) error {
	if p.url == "" {
		c, err := p.dialer.DialContext(ctx, p.network, p.addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "gatehouse-health")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	// A redirect or a 4xx still shows a server that answers; only a
	// server error means the service is not working.
	if resp.StatusCode >= 500 {
		return fmt.Errorf("%w %s", errStatus, resp.Status)
	}
	return nil
}
