package proxy

import (
	"context"
	"net"
	"net/http"
	"time"

	"gatehouse/auth"
	"gatehouse/forward"
	"gatehouse/metrics"
	"gatehouse/routes"
)

// ConnContext is the http.Server ConnContext of every door's server: it
// lets forwarding watch a plain client socket while the kernel splices a
// large body to it (forward/splice_linux.go).
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return forward.WithClientConn(ctx, c)
}

// Door returns the handler for one door of the gateway.
func (g *Gateway) Door(d routes.Door) http.Handler {
	proto := "http"
	if d == routes.Cloudflare {
		// Visitors reach Cloudflare over HTTPS; cloudflared says so in
		// X-Forwarded-Proto, which is believed from trusted peers.
		proto = "https"
	}
	h := &doorHandler{g: g, door: d, doorName: d.String(), proto: proto}
	if g.metrics != nil {
		h.unrouted = g.routeMetrics(h.doorName, "")
	}
	return h
}

// TailnetHandler is the handler of one tailnet node. The shared node routes
// by Host; a node of a route's own serves that route whatever the Host.
func (g *Gateway) TailnetHandler(nodeName string, perRoute bool) http.Handler {
	h := &doorHandler{g: g, door: routes.Tailnet, doorName: routes.Tailnet.String(), proto: "http"}
	if g.metrics != nil {
		h.unrouted = g.routeMetrics(h.doorName, "")
	}
	if perRoute {
		h.fixedHost = nodeName
	}
	return h
}

type doorHandler struct {
	g        *Gateway
	door     routes.Door
	doorName string
	proto    string
	// fixedHost, when set, replaces the Host header in route matching.
	fixedHost string
	// unrouted counts requests that matched no route.
	unrouted *metrics.RouteDoor
}

// ServeHTTP takes a request through the stages of the package doc, each of
// which either hands the request on or answers it itself.
func (h *doorHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v := h.begin(w, r)
	defer h.end(&v, r)

	// Scrub: nothing below sees a header that could claim an identity.
	v.fwd, v.deviceToken = h.scrub(r, v.st.table.Config)
	// Match: one path, decided on and served; gatehouse's own endpoints
	// first, then the route table.
	var ok bool
	if v.path, ok = cleanPath(v.lw, r.URL); !ok {
		return
	}
	if h.serveGatehouse(&v, r) {
		return
	}
	if v.m = h.match(v.st.table, r.Host, v.path); v.m.Route == nil {
		writeNotFound(v.lw)
		return
	}
	v.routeName = v.m.Route.Name
	// Identify, decide, limit: who is asking, may they, and not too often.
	policy, ok := h.identify(&v, r)
	if !ok || !h.decide(&v, r, policy) || !h.admit(&v) {
		return
	}
	// Prepare and forward: the backend gets the decided request only.
	if h.prepare(w, &v, r) {
		h.forward(&v, r)
	}
}

// visit is one request's way through a door: what each stage found out,
// for the stages after it, the access log and the metrics.
type visit struct {
	// lw is the answer. It is the one part of a visit on the heap: the
	// stages hand it on as an http.ResponseWriter.
	lw    *loggingWriter
	st    *state
	start time.Time
	// signIn is family sign-in on the Cloudflare and LAN doors, nil elsewhere or
	// when it is not set up.
	signIn      SignIn
	fwd         forwarded
	deviceToken string
	path        string // cleaned: what is decided on and forwarded
	m           routes.Match
	routeName   string // for logs and metrics, set once known
	id          auth.Identity
	permit      permit // limiter slots held until the answer is sent
}

// begin starts a visit with the route table in force: a reload while the
// request runs changes nothing for it.
func (h *doorHandler) begin(w http.ResponseWriter, r *http.Request) visit {
	v := visit{st: h.g.state.Load(), start: time.Now()}
	v.lw = &loggingWriter{ResponseWriter: w, door: h.doorName, stall: v.st.table.Config.Server.StallTimeout}
	// A request with both Content-Length and Transfer-Encoding must have
	// its connection closed after the answer (RFC 9112 §6.1): it may be an
	// attempt to smuggle a second request past a proxy in front. net/http
	// drops the Content-Length before a handler sees the request, so every
	// request with a Transfer-Encoding closes its connection — browsers
	// never send one, and an app's chunked upload loses only a keep-alive.
	v.lw.closeConn = len(r.TransferEncoding) > 0
	if h.door == routes.Cloudflare || h.door == routes.LAN {
		// The LAN door answers the same public hostnames: the same
		// sign-in and session cookie work on both.
		if p := h.g.signIn.Load(); p != nil {
			v.signIn = *p
		}
	}
	return v
}

// end releases what the visit held and accounts for it, also when the
// forwarding was cut short by a panic (http.ErrAbortHandler).
func (h *doorHandler) end(v *visit, r *http.Request) {
	h.release(v)
	v.lw.finish()
	if h.g.metrics != nil {
		var rm *metrics.RouteDoor
		switch up := v.st.upstreams[v.m.Route]; {
		case up != nil && up.metrics[h.door] != nil:
			rm = up.metrics[h.door]
		case v.routeName == "":
			rm = h.unrouted
		default:
			rm = h.g.routeMetrics(h.doorName, v.routeName)
		}
		rm.Observe(v.lw.code(), time.Since(v.start))
	}
	if h.g.accessLog {
		h.g.logAccess(v.lw, r, v.routeName, v.fwd, v.id, v.start)
	}
	if h.g.onAnswer != nil {
		h.g.answered(v.lw, r, r.RequestURI, v.routeName, v.fwd, v.id, v.start)
	}
}
