package proxy

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"gatehouse/auth"
	"gatehouse/metrics"
	"gatehouse/ratelimit"
	"gatehouse/routes"
)

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

func (h *doorHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := h.g.state.Load()
	cfg := st.table.Config

	// Forwarding headers are weighed first, then every header that could
	// claim an identity is gone before anything else looks at the request.
	trusted, proto := cfg.Cloudflare.TrustedProxies, h.proto
	if h.door != routes.Cloudflare {
		// Tailnet peers and LAN clients connect directly: nobody forwards
		// for them, so the socket's address is the client's.
		trusted = nil
		if r.TLS != nil {
			proto = "https"
		}
	}
	fwd := readForwarded(r.RemoteAddr, r.Header, trusted, proto)
	// A device token is taken out before the scrub, on every door: it is
	// never forwarded, and only the Cloudflare door's family routes use it.
	var deviceToken string
	if o := cfg.OIDC; o != nil && o.DeviceTokenHeader != "" {
		deviceToken = takeHeader(r.Header, o.DeviceTokenHeader)
	}
	scrubHeaders(r.Header)

	lw := &loggingWriter{ResponseWriter: w, door: h.doorName, stall: cfg.Server.StallTimeout}
	// A request with both Content-Length and Transfer-Encoding must have
	// its connection closed after the answer (RFC 9112 §6.1): it may be an
	// attempt to smuggle a second request past a proxy in front. net/http
	// drops the Content-Length before a handler sees the request, so every
	// request with a Transfer-Encoding closes its connection — browsers
	// never send one, and an app's chunked upload loses only a keep-alive.
	lw.closeConn = len(r.TransferEncoding) > 0
	var routeName string
	var matched *routes.Route
	var id auth.Identity
	defer func() {
		lw.finish()
		if h.g.metrics != nil {
			var rm *metrics.RouteDoor
			switch up := st.upstreams[matched]; {
			case up != nil && up.metrics[h.door] != nil:
				rm = up.metrics[h.door]
			case routeName == "":
				rm = h.unrouted
			default:
				rm = h.g.routeMetrics(h.doorName, routeName)
			}
			rm.Observe(lw.code(), time.Since(start))
		}
		if h.g.accessLog {
			h.g.logAccess(lw, r, routeName, fwd, id, start)
		}
	}()

	// Decisions are made on the cleaned, decoded path, and the backend gets
	// exactly that path: nothing decided on differs from what is served.
	if !validPath(r.URL.Path) || r.URL.Path == "" && r.URL.Opaque != "" {
		writePage(lw, http.StatusBadRequest, badRequestPage)
		return
	}
	// Refused before the host is looked at, so the answer is the same for
	// every host (invariant 1) and no backend is reached (invariant 9).
	if routes.AmbiguousPath(r.URL.Path) {
		writePage(lw, http.StatusBadRequest, ambiguousPathPage)
		return
	}
	path := routes.CleanPath(r.URL.Path)

	var signIn SignIn
	if h.door == routes.Cloudflare || h.door == routes.LAN {
		// The LAN door answers the same public hostnames: the same
		// sign-in and session cookie work on both.
		if p := h.g.signIn.Load(); p != nil {
			signIn = *p
		}
	}
	if signIn != nil && strings.HasPrefix(path, "/.gatehouse/") && st.table.HasHost(h.door, r.Host) {
		// Sign-in, callback and logout endpoints get a strict limit of
		// their own, whatever routes.hcl says.
		// Keycloak's back-channel logouts are signed and come in bursts
		// when an admin ends many sessions; they are not limited.
		if lim := h.g.signInLimit; lim != nil && path != "/.gatehouse/backchannel-logout" {
			key := ratelimit.ClientKey("", fwd.client)
			v := lim.Allow(key, time.Now())
			if !v.OK {
				routeName = "gatehouse"
				h.g.tooMany(lw, routeName, v)
				return
			}
			defer lim.Done(key, v, 0, time.Now())
		}
		if signIn.ServeGatehouse(lw, r) {
			return
		}
	}

	host := r.Host
	if h.fixedHost != "" {
		host = h.fixedHost
	}
	m := st.table.Match(h.door, host, path)
	if m.Route == nil {
		writeNotFound(lw)
		return
	}
	routeName, matched = m.Route.Name, m.Route
	dr := m.Route.Doors[h.door]

	if h.door == routes.Tailnet {
		// Identity comes only from WhoIs on this connection. No answer,
		// no entry: the request is refused, never forwarded anonymously.
		peers := auth.PeerLookupFrom(r.Context())
		if peers == nil {
			writePage(lw, http.StatusForbidden, whoIsFailedPage)
			return
		}
		rec, err := peers.LookupPeer(r.Context())
		if err != nil {
			h.g.log.Warn("tailnet identity unknown; request refused", "route", routeName, "client", fwd.client, "err", err)
			writePage(lw, http.StatusForbidden, whoIsFailedPage)
			return
		}
		id.Tailnet = st.admins.Peer(rec)
	}

	policy := st.policy
	if m.Access == routes.Family && signIn != nil {
		if dt, ok := signIn.(DeviceTokens); ok && deviceToken != "" {
			// A device token stands for its owner and needs no provider:
			// it keeps working while Keycloak is down.
			u, ok := dt.Device(lw, r, deviceToken, fwd.client)
			if !ok {
				return
			}
			id.Family, policy.SignInReady = u, true
		} else {
			// A session is judged even while the provider is away: one it
			// confirmed recently enough rides out the outage (the oidc
			// block's outage_grace); without one, sign-in is unavailable.
			id.Family = signIn.Session(lw, r)
			policy.SignInReady = id.Family != nil || signIn.Ready()
		}
	}

	switch policy.Decide(m.Access, id, dr.Groups) {
	case auth.Allow:
	case auth.NotFound:
		writeNotFound(lw)
		return
	case auth.Deny:
		writePage(lw, http.StatusForbidden, forbiddenPage(m.Route.Name, id, cfg.Tailnet, r.URL.RequestURI()))
		return
	case auth.SignIn:
		if signIn != nil {
			signIn.Begin(lw, r)
			return
		}
		writeSignInUnavailable(lw, r, m.Route.Name)
		return
	case auth.SignInUnavailable:
		writeSignInUnavailable(lw, r, m.Route.Name)
		return
	}

	// Limits key on who is asking: a signed-in user or tailnet device
	// when known, else the client address.
	if rl := st.limits[m.Route]; rl.route != nil || rl.paths != nil {
		key := ratelimit.ClientKey(limitIdentity(id), fwd.client)
		now := time.Now()
		for _, b := range rl.bans {
			if banned, left := b.Banned(key, now); banned {
				h.g.tooMany(lw, m.Route.Name, ratelimit.Verdict{Banned: true, RetryAfter: left})
				return
			}
		}
		pathLim := rl.paths[m.Rule]
		if lim := rl.route; lim != nil {
			v := lim.Allow(key, now)
			if !v.OK {
				h.g.tooMany(lw, m.Route.Name, v)
				return
			}
			defer func() { lim.Done(key, v, lw.code(), time.Now()) }()
		}
		if pathLim != nil {
			v := pathLim.Allow(key, now)
			if !v.OK {
				h.g.tooMany(lw, m.Route.Name, v)
				return
			}
			defer func() {
				if pathLim.Done(key, v, lw.code(), time.Now()) {
					h.g.log.Warn("client banned after repeated login failures", "route", m.Route.Name, "client", key.String())
					if h.g.metrics != nil {
						h.g.metrics.Bans.WithLabelValues(m.Route.Name).Inc()
					}
				}
			}()
		}
	}

	if max := m.Route.MaxBodyOn(h.door); max > 0 {
		if r.ContentLength > max {
			writePage(lw, http.StatusRequestEntityTooLarge, tooLargePage(m.Route.Name, max, h.doorName, m.Route.Doors[routes.LAN] != nil))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			// The raw writer, so net/http knows to close the connection
			// after the 413 instead of reading the rest of the upload.
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		lw.body = &stallReader{ReadCloser: r.Body, rc: http.NewResponseController(w), stall: cfg.Server.StallTimeout}
		r.Body = lw.body
	}

	r.URL.Path, r.URL.RawPath = path, ""
	hdr := r.Header
	if fwd.client.IsValid() {
		ip := []string{fwd.client.String()}
		hdr["X-Forwarded-For"] = ip
		hdr["X-Real-Ip"] = ip
	}
	// Shared, never-modified slices: one allocation fewer per request.
	if fwd.proto == "https" {
		hdr["X-Forwarded-Proto"] = protoHTTPS
	} else {
		hdr["X-Forwarded-Proto"] = protoHTTP
	}
	hdr["X-Forwarded-Host"] = []string{r.Host}
	if p := id.Tailnet; p != nil && p.Login != "" {
		for _, name := range dr.IdentityHeaders {
			v := p.Login
			if name == "Tailscale-User-Name" || name == "Remote-Name" {
				v = p.Name
			}
			hdr[name] = []string{v}
		}
	}
	if f := id.Family; f != nil {
		// Set on the inbound request; the upstream's Rewrite copies them
		// after hop-by-hop removal, so Connection: cannot drop them.
		for _, name := range dr.IdentityHeaders {
			if v, ok := f.HeaderValue(name); ok {
				hdr[name] = []string{v}
			}
		}
	}
	if signIn != nil {
		// The session cookie is the gateway's, on every route of the door
		// (with cookie_domain it reaches app routes too): never forwarded.
		signIn.StripCookies(hdr)
	}

	st.upstreams[m.Route].serve(lw, r)
}

var (
	protoHTTPS = []string{"https"}[:1:1]
	protoHTTP  = []string{"http"}[:1:1]
)

// validPath refuses control characters, which no legitimate path carries
// and which backends parse in surprising ways.
func validPath(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f {
			return false
		}
	}
	return true
}

// loggingWriter records status and size for the access log, and keeps a
// no-progress deadline on writes: a client that stops reading is cut after
// the stall timeout, while a long download that keeps moving never is.
type loggingWriter struct {
	http.ResponseWriter
	door     string
	status   int
	bytes    int64
	stall    time.Duration
	deadline time.Time
	rc       *http.ResponseController
	// hijacked: the connection is no longer the server's (WebSocket), so
	// no deadline may be set on it.
	hijacked bool
	// closeConn: the connection closes after this answer, whatever the
	// handler set in the header.
	closeConn bool
	// body is the request's body as the door handed it on, nil without one.
	body *stallReader
}

func (w *loggingWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		if w.closeConn {
			w.Header()["Connection"] = []string{"close"}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *loggingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.extend()
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// extend pushes the write deadline forward, at most 64 times per stall
// period so the hot path does not reset a timer on every write, yet every
// write starts with nearly the whole stall period ahead of it: a write
// to a slow but steady client can block for long, because the kernel
// wakes a writer only once a third of the send queue (megabytes) has
// drained.
func (w *loggingWriter) extend() {
	if w.stall <= 0 {
		return
	}
	now := time.Now()
	if w.deadline.Sub(now) > w.stall-w.stall/64 {
		return
	}
	if w.rc == nil {
		w.rc = http.NewResponseController(w.ResponseWriter)
	}
	w.deadline = now.Add(w.stall)
	_ = w.rc.SetWriteDeadline(w.deadline)
}

// finish gives the server's last write of the response one more stall
// period. net/http writes what it still buffers (a short page, the headers
// of a body-less answer, the chunked terminator) after the handler returns;
// without a deadline, a client that stops reading holds the connection
// forever. net/http clears the write deadline before the next request.
func (w *loggingWriter) finish() {
	if w.stall <= 0 || w.hijacked {
		return
	}
	if w.rc == nil {
		w.rc = http.NewResponseController(w.ResponseWriter)
	}
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.stall))
}

func (w *loggingWriter) Flush() {
	w.extend()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands over the connection for WebSockets; net/http clears its
// deadlines on hijack.
func (w *loggingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	w.deadline = time.Time{}
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	w.hijacked = err == nil
	return c, brw, err
}

func (w *loggingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// code is the status sent, 499 when the client left before any.
func (w *loggingWriter) code() int {
	if w.status == 0 {
		return 499
	}
	return w.status
}

// stallReader keeps a no-progress deadline on the request body: a stalled
// upload is cut, a slow but steady one goes on for as long as it takes.
type stallReader struct {
	io.ReadCloser
	rc       *http.ResponseController
	stall    time.Duration
	deadline time.Time
	// failed is the first failure reading the client's body, so a failed
	// forward can be told apart from a failed backend. The Transport
	// reads the body on a goroutine of its own.
	failed atomic.Pointer[error]
}

// err is the first failure reading the body, nil while none.
func (s *stallReader) err() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.stall > 0 {
		now := time.Now()
		if s.deadline.Sub(now) <= s.stall/2 {
			s.deadline = now.Add(s.stall)
			_ = s.rc.SetReadDeadline(s.deadline)
		}
	}
	n, err := s.ReadCloser.Read(p)
	if err != nil && err != io.EOF && s.failed.Load() == nil {
		s.failed.CompareAndSwap(nil, &err)
	}
	return n, err
}

// limitIdentity names the client for rate limits when an identity is known.
func limitIdentity(id auth.Identity) string {
	switch {
	case id.Family != nil && id.Family.Subject != "":
		return "family:" + id.Family.Subject
	case id.Tailnet != nil && id.Tailnet.Login != "":
		return "tailnet:" + id.Tailnet.Login + "/" + id.Tailnet.Name
	case id.Tailnet != nil:
		return "tailnet:" + id.Tailnet.Name
	}
	return ""
}

func (g *Gateway) tooMany(w http.ResponseWriter, route string, v ratelimit.Verdict) {
	secs := ratelimit.RetryAfterSeconds(v.RetryAfter)
	reason := "rate"
	body := tooManyPage
	if v.Banned {
		reason, body = "banned", bannedPage
	}
	if g.metrics != nil {
		g.metrics.RateLimited.WithLabelValues(route, reason).Inc()
	}
	w.Header()["Retry-After"] = []string{strconv.Itoa(secs)}
	writePage(w, http.StatusTooManyRequests, body)
}

func (g *Gateway) logAccess(lw *loggingWriter, r *http.Request, route string, fwd forwarded, id auth.Identity, start time.Time) {
	ctx := r.Context()
	if !g.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	// LogAttrs with typed attributes: no boxing of every value into an
	// interface, which the access log would otherwise pay per request.
	attrs := [11]slog.Attr{
		slog.String("door", lw.door), slog.String("route", route), slog.String("host", r.Host),
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", lw.code()),
		slog.Int64("bytes", lw.bytes), slog.Duration("duration", time.Since(start).Round(time.Microsecond)),
		slog.String("client", fwd.client.String()),
	}
	n := 9
	if who := id.String(); who != "" {
		attrs[n] = slog.String("identity", who)
		n++
	}
	g.log.LogAttrs(ctx, slog.LevelInfo, "request", attrs[:n]...)
}
