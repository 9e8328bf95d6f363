// Package forward is gatehouse's upstream client: it sends a request the
// door has decided on to the route's backend and copies the answer back.
//
// Two paths do it. Plain GET and HEAD requests — nearly all of a gateway's
// traffic — take the direct path (direct.go): keep-alive connections of
// its own, on the request's goroutine. Everything else (bodies, upgrades,
// HTTPS backends, anything unusual) goes through httputil.ReverseProxy and
// http.Transport (reverseproxy.go). The direct path keeps ReverseProxy's
// semantics exactly; TestDirectDifferential in proxy/direct_test.go and
// FuzzDirectParity here compare the two.
//
// When an exchange fails before the backend's answer begins, Serve writes
// nothing and returns an *Error saying whether the client's body or the
// backend failed: the caller answers, with its own pages.
package forward

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// Options tune a Client.
type Options struct {
	Logger *slog.Logger
	// SocketFor names the Unix socket of a backend host (a socket
	// backend's URL has a synthetic host), "" for a TCP backend. It is
	// asked at every dial, so the route table in force decides.
	SocketFor func(host string) string
	// ReverseProxyOnly forwards every request through
	// httputil.ReverseProxy, never the direct path: for comparing the two.
	ReverseProxyOnly bool
}

// Client holds the connections to every backend for the gateway's life:
// routes come and go with reloads, their connections stay.
type Client struct {
	opt Options
	// transports are the ReverseProxy path's, one per pair of idle and
	// response timeouts (both are per Transport): a reload that changes
	// either gets a new one, and the old one's idle connections close by
	// its own idle timeout.
	transports sync.Map // transportKey → *http.Transport
	// pools hold the keep-alive connections of the direct path.
	pools pools
}

// NewClient makes a Client.
func NewClient(opt Options) *Client {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.SocketFor == nil {
		opt.SocketFor = func(string) string { return "" }
	}
	return &Client{opt: opt}
}

// CloseIdle closes every idle backend connection.
func (c *Client) CloseIdle() {
	c.transports.Range(func(_, t any) bool {
		t.(*http.Transport).CloseIdleConnections()
		return true
	})
	c.pools.closeIdle()
}

// Route is what forwarding needs to know of one route.
type Route struct {
	// URL is the backend's base URL; Socket, when set, the Unix socket it
	// listens on.
	URL    *url.URL
	Socket string
	// Protected are the request headers gatehouse itself sets (forwarding
	// and identity headers): they reach the backend as they are on the
	// request, even when a client names them in Connection.
	Protected []string
	// ResponseTimeout bounds the wait for the backend's response head,
	// counted from the end of the request; 0: no bound.
	ResponseTimeout time.Duration
	// IdleTimeout closes a connection to the backend idle this long, on
	// both paths.
	IdleTimeout time.Duration
	// FilterCookies is given the header of every answer before it reaches
	// the client, to remove cookies the backend may not set.
	FilterCookies func(http.Header)
}

// Backend forwards the requests of one route.
type Backend struct {
	rp     *httputil.ReverseProxy
	direct *direct // nil: every request takes rp
}

// Backend sets up forwarding for a route. Connections are the Client's,
// shared with every route to the same backend.
func (c *Client) Backend(r Route) *Backend {
	if r.FilterCookies == nil {
		r.FilterCookies = func(http.Header) {}
	}
	b := &Backend{rp: c.newReverseProxy(r)}
	if !c.opt.ReverseProxyOnly {
		b.direct = c.newDirect(r)
	}
	return b
}

// Serve forwards r and copies the backend's answer to w. When the exchange
// fails before the answer begins, it writes nothing to w (bar 1xx answers
// already passed on) and returns why.
func (b *Backend) Serve(w http.ResponseWriter, r *http.Request) *Error {
	if len(w.Header()) > 0 {
		hw := holdHeaders(w)
		defer hw.release()
		w = hw
	}
	if b.direct != nil && directEligible(r) {
		if served, err := b.direct.serve(w, r); served {
			return err
		}
	}
	return b.viaReverseProxy(w, r)
}

// StallKeeper is a ResponseWriter that cuts a client who stops reading
// (the door's writer does, after the stall timeout). A body sent by
// splice(2) passes no write through it, so the direct path tells it of the
// progress it sees instead; a writer that is not a StallKeeper (or not an
// io.ReaderFrom) gets every body through the copy loop.
type StallKeeper interface {
	// StallTimeout is the no-progress limit; 0: none.
	StallTimeout() time.Duration
	// Progressed says the body moved; it is called from another
	// goroutine than the handler's.
	Progressed()
}

// Error is an exchange that failed before the backend's answer began.
type Error struct {
	// Err is what failed.
	Err error
	// Body is the first failure reading the client's request body, nil if
	// it did not fail: then the client is at fault, not the backend.
	Body error
}

func (e *Error) Error() string {
	if e.Body != nil {
		return fmt.Sprintf("%v (reading the request body: %v)", e.Err, e.Body)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether the backend took the request and sent no
// response head within the route's response timeout — as opposed to one
// that could not be reached.
func (e *Error) Timeout() bool {
	if errors.Is(e.Err, errBackendTimeout) {
		return true
	}
	var op *net.OpError
	if errors.As(e.Err, &op) && op.Op == "dial" {
		return false
	}
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// errBackendTimeout is the direct path's response timeout; the Transport
// has its own.
var errBackendTimeout = errors.New("backend sent no response headers within response_timeout")

var upstreamDialer = &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}

const copyBufferSize = 64 << 10

// bufPool lends both paths their copy buffers. It stores array pointers,
// so putting a buffer back allocates nothing.
var bufPool = &bytePool{p: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}

type bytePool struct{ p sync.Pool }

func (b *bytePool) Get() []byte { return b.p.Get().(*[copyBufferSize]byte)[:] }
func (b *bytePool) Put(p []byte) {
	if cap(p) >= copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(p[:copyBufferSize]))
	}
}
