// Package proxy holds the doors of gatehouse and the way a request takes
// through one (doorHandler.ServeHTTP in door.go reads as this list). Each
// stage either hands the request on or answers it itself:
//
//   - scrub (scrub.go): the forwarding headers are weighed against the
//     peer, the device token is taken out, and every header that could
//     claim an identity is gone before anything else looks at the request.
//   - match (match.go, gatehouse.go): a path that could mean two things is
//     refused; gatehouse's own /.gatehouse/ endpoints answer under their
//     built-in limit; the cleaned path and host find a route, or the one
//     404 that every unknown host gets.
//   - identify (identify.go): tailnet WhoIs, a device token or a family
//     session make the auth.Identity; a door that cannot tell refuses.
//   - decide (decide.go): the route's access level and the identity give a
//     verdict, answered as 404, 403, a sign-in redirect or 503.
//   - limit (limits.go): bans, then the route's and the path's limiters;
//     what they let through is released with the answer's status.
//   - prepare (prepare.go): max_body and the stall timeout on the body, the
//     decided path, the X-Forwarded-* and identity headers gatehouse
//     vouches for, gatehouse's own cookies stripped.
//   - forward (forward.go, and the forward package it calls): the
//     backend's answer, or a page saying whose fault it is that there is
//     none (the client's body, the backend's silence or absence).
//
// Around them, writer.go keeps the answer's stall deadline and what the
// access log and metrics need; pages.go renders every page.
package proxy

import (
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/auth"
	"gatehouse/forward"
	"gatehouse/metrics"
	"gatehouse/ratelimit"
	"gatehouse/routes"
)

// Gateway is the running state shared by every door: the current route
// table and one upstream per route, swapped together atomically.
type Gateway struct {
	state atomic.Pointer[state]
	// client holds the backend connections for the gateway's life, so
	// reloads keep them.
	client       *forward.Client
	log          *slog.Logger
	accessLog    bool
	signIn       atomic.Pointer[SignIn]
	limits       *ratelimit.Registry
	metrics      *metrics.Metrics
	metricsCache sync.Map // door+route → *metrics.RouteDoor
	// signInLimit guards gatehouse's own sign-in endpoints.
	signInLimit *ratelimit.Limiter
	health      Health
	onAnswer    func(Answer)
}

// Health tells the doors what the backend checks found (health.Checker
// implements it), so a 502 can say since when a service has not answered.
type Health interface {
	DownSince(route string) (time.Time, bool)
}

// SignIn is family sign-in as the doors need it; the signin package
// implements it. Without one, family routes fail closed with 503.
type SignIn interface {
	// Ready reports whether sign-in can work right now (provider reachable).
	Ready() bool
	// Session returns the verified family user of the request, or nil.
	// It is asked whatever Ready says: while the provider is unreachable
	// a session it confirmed recently may still stand. It may set headers
	// on w (a renewed or cleared session cookie) but never writes a
	// status or body.
	Session(w http.ResponseWriter, r *http.Request) *auth.FamilyUser
	// StripCookies removes sign-in's own cookies from a request about to
	// be forwarded: backends never see the gateway session.
	StripCookies(h http.Header)
	// ServeGatehouse answers gatehouse's own endpoints under /.gatehouse/
	// (callback, logout, back-channel logout) and reports whether it did.
	ServeGatehouse(w http.ResponseWriter, r *http.Request) bool
	// Begin answers a family request that has no session: a sign-in
	// redirect for a browser navigation, 401 JSON for anything else.
	Begin(w http.ResponseWriter, r *http.Request)
}

// DeviceTokens is implemented by a SignIn that also accepts device tokens:
// long-lived tokens a family member made for a phone or TV app, sent in
// the oidc block's device_token_header.
type DeviceTokens interface {
	// Device returns the family user a device token stands for. When it
	// returns false it has answered the request itself (401 JSON for an
	// unknown or revoked token, 429 over the token's rate limit).
	Device(w http.ResponseWriter, r *http.Request, token string, client netip.Addr) (*auth.FamilyUser, bool)
}

// SetSignIn installs family sign-in; nil removes it.
func (g *Gateway) SetSignIn(s SignIn) {
	if s == nil {
		g.signIn.Store(nil)
		return
	}
	g.signIn.Store(&s)
}

type state struct {
	table     *routes.Table
	upstreams map[*routes.Route]*upstream
	policy    auth.Policy
	admins    auth.AdminSet
	limits    map[*routes.Route]routeLimits
}

// routeLimits are the limiters of one route: the route's own, and per path
// rule the nearest limiter at or above it.
type routeLimits struct {
	route *ratelimit.Limiter
	paths map[*routes.PathRule]*ratelimit.Limiter
	bans  []*ratelimit.Limiter // every limiter of the route with a ban rule
}

// upstream is a route's way to its backend, and its metrics.
type upstream struct {
	backend *forward.Backend
	metrics [len(routes.Doors)]*metrics.RouteDoor // by door
}

// Options tune a Gateway.
type Options struct {
	Logger *slog.Logger
	// AccessLog logs one line per request.
	AccessLog bool
	// Limits enforces routes.hcl's limit and ban blocks; nil: no limits.
	Limits *ratelimit.Registry
	// Metrics records requests; nil: none.
	Metrics *metrics.Metrics
	// ReverseProxyOnly forwards every request through
	// httputil.ReverseProxy, never the direct path: for comparing the two.
	ReverseProxyOnly bool
	// Health, if set, is asked when a backend fails; nil: the 502 page
	// says nothing of since when.
	Health Health
	// Answered, if set, is called after every request a door answered
	// (on the request's goroutine: it must be quick).
	Answered func(Answer)
}

// New builds a Gateway serving t.
func New(t *routes.Table, opt Options) *Gateway {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	g := &Gateway{log: opt.Logger, accessLog: opt.AccessLog, limits: opt.Limits, metrics: opt.Metrics,
		health: opt.Health, onAnswer: opt.Answered}
	g.client = forward.NewClient(forward.Options{
		Logger:           opt.Logger,
		SocketFor:        g.socketFor,
		ReverseProxyOnly: opt.ReverseProxyOnly,
	})
	if g.limits != nil {
		// 30 sign-in requests a minute per client, bursts of 20: a person
		// never needs more; a password sprayer gets nowhere.
		g.signInLimit = g.limits.Limiter("builtin/signin", ratelimit.Rule{Rate: 0.5, Burst: 20, Concurrent: 8}, nil)
	}
	g.Swap(t)
	return g
}

// Table is the route table in force.
func (g *Gateway) Table() *routes.Table { return g.state.Load().table }

// Swap puts a new route table in force. Requests already running keep the
// route they matched; new requests see the new table.
func (g *Gateway) Swap(t *routes.Table) {
	st := &state{table: t, upstreams: make(map[*routes.Route]*upstream, len(t.Routes()))}
	for _, r := range t.Routes() {
		up := g.newUpstream(r, t.Config.Server)
		if g.metrics != nil {
			for _, d := range routes.Doors {
				up.metrics[d] = g.routeMetrics(d.String(), r.Name)
			}
		}
		st.upstreams[r] = up
	}
	// Family routes fail closed unless a sign-in in force says it is
	// ready (identify.go decides that per request).
	st.policy = auth.Policy{SignInReady: false}
	if tc := t.Config.Tailnet; tc != nil {
		st.admins = auth.NewAdminSet(tc.Admins, tc.AdminCapability)
	}
	if g.limits != nil {
		st.limits = buildLimits(g.limits, t.Config)
	}
	g.state.Store(st)
}

// routeMetrics returns the series of a route on a door, the same ones
// across reloads.
func (g *Gateway) routeMetrics(door, route string) *metrics.RouteDoor {
	key := door + "\x00" + route
	if v, ok := g.metricsCache.Load(key); ok {
		return v.(*metrics.RouteDoor)
	}
	v, _ := g.metricsCache.LoadOrStore(key, g.metrics.ForRouteDoor(door, route))
	return v.(*metrics.RouteDoor)
}

// Close releases idle upstream connections.
func (g *Gateway) Close() { g.client.CloseIdle() }

// socketFor is the Unix socket of a socket backend's synthetic host in the
// table in force.
func (g *Gateway) socketFor(host string) string {
	st := g.state.Load()
	if st == nil {
		return ""
	}
	for _, r := range st.table.Routes() {
		if r.Backend.Socket != "" && r.Backend.URL.Host == host {
			return r.Backend.Socket
		}
	}
	return ""
}

func (g *Gateway) newUpstream(r *routes.Route, sc routes.ServerConfig) *upstream {
	// Every header the door sets for the backend (prepare.go).
	protected := slices.Clone(forwardedHeaders)
	for _, dr := range r.Doors {
		if dr != nil {
			protected = append(protected, dr.IdentityHeaders...)
		}
	}
	return &upstream{backend: g.client.Backend(forward.Route{
		URL: r.Backend.URL, Socket: r.Backend.Socket,
		Protected:       protected,
		ResponseTimeout: r.ResponseTimeoutIn(sc),
		IdleTimeout:     sc.UpstreamIdleTimeout,
		FilterCookies:   func(h http.Header) { g.keepOwnCookies(r.Name, h) },
	})}
}

var forwardedHeaders = []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip"}
