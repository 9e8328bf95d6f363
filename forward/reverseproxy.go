package forward

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"
)

// newReverseProxy is the ReverseProxy path of a route.
func (c *Client) newReverseProxy(r Route) *httputil.ReverseProxy {
	target := r.URL
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// The backend sees the public host name, as behind Caddy or
			// nginx with `proxy_set_header Host $host`.
			pr.Out.Host = pr.In.Host
			// ReverseProxy removed X-Forwarded-* from Out, and the headers
			// a client named in Connection: gatehouse's own are set again
			// from In, where the door put the only copies (it scrubbed
			// every client-sent one).
			for _, k := range r.Protected {
				if v, ok := pr.In.Header[k]; ok {
					pr.Out.Header[k] = v
				}
			}
		},
		Transport: c.transportFor(transportKey{idle: r.IdleTimeout, response: r.ResponseTimeout}),
		// Zero, not -1: ReverseProxy then flushes SSE and responses of
		// unknown length (chunked streams) after every write, and lets
		// responses of known length fill the write buffer, which saves a
		// write syscall and a chunk frame per response.
		FlushInterval: 0,
		BufferPool:    bufPool,
		ErrorLog:      slog.NewLogLogger(c.opt.Logger.Handler(), slog.LevelDebug),
		ModifyResponse: func(res *http.Response) error {
			r.FilterCookies(res.Header)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			// Called before any of an answer is written: the exchange
			// keeps the error for Serve to return.
			if ex, ok := w.(*exchange); ok {
				ex.failed = err
				return
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
}

// viaReverseProxy forwards r through ReverseProxy.
func (b *Backend) viaReverseProxy(w http.ResponseWriter, r *http.Request) *Error {
	ex := exchanges.Get().(*exchange)
	ex.ResponseWriter = w
	var body *watchedBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &watchedBody{ReadCloser: r.Body}
		r.Body = body
	}
	b.rp.ServeHTTP(ex, r)
	var fe *Error
	if ex.failed != nil {
		fe = &Error{Err: ex.failed}
		if body != nil {
			fe.Body = body.err()
		}
	}
	*ex = exchange{}
	exchanges.Put(ex)
	return fe
}

// exchange is the writer ReverseProxy answers through: it catches the
// error ReverseProxy would otherwise answer itself.
type exchange struct {
	http.ResponseWriter
	failed error
}

// exchanges are reused: ReverseProxy holds none after ServeHTTP returns.
var exchanges = sync.Pool{New: func() any { return new(exchange) }}

func (ex *exchange) Unwrap() http.ResponseWriter { return ex.ResponseWriter }

// watchedBody keeps the first failure reading the client's body, so a
// failed exchange can be told apart from a failed backend. The Transport
// reads the body on a goroutine of its own.
type watchedBody struct {
	io.ReadCloser
	failed atomic.Pointer[error]
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.failed.Load() == nil {
		b.failed.CompareAndSwap(nil, &err)
	}
	return n, err
}

// err is the first failure reading the body, nil while none.
func (b *watchedBody) err() error {
	if p := b.failed.Load(); p != nil {
		return *p
	}
	return nil
}

type transportKey struct{ idle, response time.Duration }

// transportFor returns the Transport that closes idle connections after
// k.idle and waits at most k.response for a backend's response headers,
// kept for the client's life so reloads keep their connections.
func (c *Client) transportFor(k transportKey) *http.Transport {
	if t, ok := c.transports.Load(k); ok {
		return t.(*http.Transport)
	}
	t, _ := c.transports.LoadOrStore(k, c.newTransport(k))
	return t.(*http.Transport)
}

func (c *Client) newTransport(k transportKey) *http.Transport {
	dialer := upstreamDialer
	return &http.Transport{
		Proxy: nil, // never send backend traffic through an environment proxy
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			// Unix-socket backends have a synthetic host "<route>.sock";
			// the socket path comes from the table in force.
			if host, _, err := net.SplitHostPort(addr); err == nil {
				if sock := c.opt.SocketFor(host); sock != "" {
					return dialer.DialContext(ctx, "unix", sock)
				}
			}
			return dialer.DialContext(ctx, network, addr)
		},
		// Many keep-alive connections per backend: the default of 2 idle
		// connections per host makes a busy backend reconnect constantly.
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   maxIdlePerBackend,
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
