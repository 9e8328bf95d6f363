// Package proxy holds the doors of gatehouse and the handler chain behind
// them: match → decide → limit → forward.
package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/auth"
	"gatehouse/metrics"
	"gatehouse/ratelimit"
	"gatehouse/routes"
)

// Gateway is the running state shared by every door: the current route
// table and one reverse proxy per route, swapped together atomically.
type Gateway struct {
	state atomic.Pointer[state]
	// transports are the ReverseProxy path's, one per pair of upstream
	// idle and response timeouts (both are per Transport), kept for the
	// gateway's life so reloads keep their connections.
	transports   sync.Map // transportKey → *http.Transport
	log          *slog.Logger
	accessLog    bool
	signIn       atomic.Pointer[SignIn]
	limits       *ratelimit.Registry
	metrics      *metrics.Metrics
	metricsCache sync.Map // door+route → *metrics.RouteDoor
	// signInLimit guards gatehouse's own sign-in endpoints.
	signInLimit *ratelimit.Limiter
	// direct holds the keep-alive connections of the direct path.
	direct           directPools
	reverseProxyOnly bool
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

type upstream struct {
	route   *routes.Route
	rp      *httputil.ReverseProxy
	direct  *direct               // nil: every request takes rp
	metrics [len(routes.Doors)]*metrics.RouteDoor // by door
}

// serve forwards a decided request: plain GET and HEAD on the direct path,
// everything else (bodies, upgrades, HTTPS backends) through ReverseProxy.
func (u *upstream) serve(w *loggingWriter, r *http.Request) {
	if u.direct != nil && directEligible(r) && u.direct.serve(w, r) {
		return
	}
	u.rp.ServeHTTP(w, r)
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
}

// New builds a Gateway serving t.
func New(t *routes.Table, opt Options) *Gateway {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	g := &Gateway{log: opt.Logger, accessLog: opt.AccessLog, limits: opt.Limits, metrics: opt.Metrics, reverseProxyOnly: opt.ReverseProxyOnly}
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
	// Family sign-in is not built yet: family routes fail closed.
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
func (g *Gateway) Close() {
	g.transports.Range(func(_, t any) bool {
		t.(*http.Transport).CloseIdleConnections()
		return true
	})
	g.direct.closeIdle()
}

type transportKey struct{ idle, response time.Duration }

// transportFor returns the Transport that closes idle backend connections
// after idle and waits at most response for a backend's response headers.
// A reload that changes either gets a new one; the old one's idle
// connections close by its own idle timeout.
func (g *Gateway) transportFor(idle, response time.Duration) *http.Transport {
	k := transportKey{idle, response}
	if t, ok := g.transports.Load(k); ok {
		return t.(*http.Transport)
	}
	t, _ := g.transports.LoadOrStore(k, g.newTransport(k))
	return t.(*http.Transport)
}

var upstreamDialer = &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}

func (g *Gateway) newTransport(k transportKey) *http.Transport {
	dialer := upstreamDialer
	return &http.Transport{
		Proxy: nil, // never send backend traffic through an environment proxy
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			// Unix-socket backends have a synthetic host "<route>.sock";
			// the socket path comes from the table in force.
			if sock := g.socketFor(addr); sock != "" {
				return dialer.DialContext(ctx, "unix", sock)
			}
			return dialer.DialContext(ctx, network, addr)
		},
		// Many keep-alive connections per backend: the default of 2 idle
		// connections per host makes a busy backend reconnect constantly.
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       k.idle,
		ExpectContinueTimeout: time.Second,
		// Counted from the end of the request body, and only until the
		// response headers: a long download or stream is never cut.
		ResponseHeaderTimeout: k.response,
		// Pass bodies through exactly as the backend encoded them.
		DisableCompression: true,
		WriteBufferSize:    64 << 10,
		ReadBufferSize:     64 << 10,
	}
}

func (g *Gateway) socketFor(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
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

const copyBufferSize = 64 << 10

// bufPool lends ReverseProxy its copy buffers. It stores array pointers,
// so putting a buffer back allocates nothing.
var bufPool = &bytePool{p: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}

type bytePool struct{ p sync.Pool }

func (b *bytePool) Get() []byte { return b.p.Get().(*[copyBufferSize]byte)[:] }
func (b *bytePool) Put(p []byte) {
	if cap(p) >= copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(p[:copyBufferSize]))
	}
}

func (g *Gateway) newUpstream(r *routes.Route, sc routes.ServerConfig) *upstream {
	target := r.Backend.URL
	up := &upstream{route: r}
	up.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// The backend sees the public host name, as behind Caddy or
			// nginx with `proxy_set_header Host $host`.
			pr.Out.Host = pr.In.Host
			// ReverseProxy removed X-Forwarded-* from Out; the door put the
			// values it trusts on In.
			for _, k := range forwardedHeaders {
				if v, ok := pr.In.Header[k]; ok {
					pr.Out.Header[k] = v
				}
			}
			// Identity headers too are set here, after ReverseProxy has
			// dropped the headers a client named in Connection: a client
			// cannot make gatehouse's own headers disappear that way. The
			// door scrubbed every client-sent copy, so only ours are on In.
			for _, dr := range r.Doors {
				if dr == nil {
					continue
				}
				for _, k := range dr.IdentityHeaders {
					if v, ok := pr.In.Header[k]; ok {
						pr.Out.Header[k] = v
					}
				}
			}
		},
		Transport: g.transportFor(sc.UpstreamIdleTimeout, r.ResponseTimeoutIn(sc)),
		// Zero, not -1: ReverseProxy then flushes SSE and responses of
		// unknown length (chunked streams) after every write, and lets
		// responses of known length fill the write buffer, which saves a
		// write syscall and a chunk frame per response.
		FlushInterval: 0,
		BufferPool:    bufPool,
		ErrorLog:      slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
		ModifyResponse: func(res *http.Response) error {
			g.keepOwnCookies(r.Name, res.Header)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			g.forwardFailed(w, req, r, err)
		},
	}
	if !g.reverseProxyOnly {
		up.direct = g.newDirect(r, sc, up.rp.ErrorHandler)
	}
	return up
}

// newDirect sets up the direct path for a route, or returns nil for a
// backend it does not serve (HTTPS, or a base path or query to join).
func (g *Gateway) newDirect(r *routes.Route, sc routes.ServerConfig, onError func(http.ResponseWriter, *http.Request, error)) *direct {
	u := r.Backend.URL
	if u.Scheme != "http" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.RawPath != "" {
		return nil
	}
	network, addr := "tcp", u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	if r.Backend.Socket != "" {
		network, addr = "unix", r.Backend.Socket
	}
	protected := make(map[string]bool, len(forwardedHeaders))
	for _, k := range forwardedHeaders {
		protected[k] = true
	}
	for _, dr := range r.Doors {
		if dr != nil {
			for _, k := range dr.IdentityHeaders {
				protected[k] = true
			}
		}
	}
	return &direct{pool: g.direct.pool(network, addr, sc.UpstreamIdleTimeout), protected: protected, onError: onError,
		responseTimeout: r.ResponseTimeoutIn(sc), keepOwnCookies: func(h http.Header) { g.keepOwnCookies(r.Name, h) }}
}

var forwardedHeaders = []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip"}

// keepOwnCookies drops a backend's attempt to set one of gatehouse's own
// cookies from its answer, and says so: an app that tries is broken or
// compromised.
func (g *Gateway) keepOwnCookies(route string, h http.Header) {
	if n := dropGatehouseCookies(h); n > 0 {
		g.log.Warn("backend tried to set gatehouse's own cookie; removed from its answer", "route", route, "cookies", n)
	}
}

// errBackendTimeout is a backend that took its request and sent no
// response headers within the route's response_timeout.
var errBackendTimeout = errors.New("backend sent no response headers within response_timeout")

// forwardFailed answers a request whose forwarding failed, by whose fault
// it failed: the client's body (too large 413, stalled 408, malformed 400,
// never counted against the backend), the client leaving (499, for the log
// only), the backend not answering in time (504) or at all (502).
func (g *Gateway) forwardFailed(w http.ResponseWriter, req *http.Request, r *routes.Route, err error) {
	// ReverseProxy hands over its own copy of the request, with the body
	// wrapped: the door's writer knows the body it passed on.
	var bodyErr error
	door := ""
	if lw, ok := w.(*loggingWriter); ok {
		door = lw.door
		if lw.body != nil {
			bodyErr = lw.body.err()
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig) || errors.As(bodyErr, &tooBig):
		writePage(w, http.StatusRequestEntityTooLarge, tooLargePage(r.Name, tooBig.Limit, door, r.Doors[routes.LAN] != nil))
	case errors.Is(bodyErr, os.ErrDeadlineExceeded):
		// The upload made no progress for stall_timeout. Reading it
		// failed, which ends the request's context too; the client is
		// still there to read the answer.
		writePage(w, http.StatusRequestTimeout, stalledPage)
	case req.Context().Err() != nil:
		// The client went away; nobody is left to answer. 499 is only
		// for the access log and metrics.
		w.WriteHeader(499)
	case bodyErr != nil:
		g.log.Info("malformed request body", "route", r.Name, "err", bodyErr)
		writePage(w, http.StatusBadRequest, malformedBodyPage)
	case isResponseTimeout(err):
		timeout := r.ResponseTimeoutIn(g.state.Load().table.Config.Server)
		g.log.Warn("backend timed out", "route", r.Name, "response_timeout", timeout, "err", err)
		if g.metrics != nil {
			g.metrics.UpstreamErrors.WithLabelValues(r.Name).Inc()
		}
		writePage(w, http.StatusGatewayTimeout, gatewayTimeoutPage(r.Name, timeout))
	default:
		g.log.Warn("backend error", "route", r.Name, "err", err)
		if g.metrics != nil {
			g.metrics.UpstreamErrors.WithLabelValues(r.Name).Inc()
		}
		writePage(w, http.StatusBadGateway, badGatewayPage(r.Name))
	}
}

// isResponseTimeout tells a backend that accepted the request and did not
// answer from one that could not be reached: the Transport's own
// response-header timeout, or the direct path's.
func isResponseTimeout(err error) bool {
	if errors.Is(err, errBackendTimeout) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
