package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// The direct path forwards the requests that make up nearly all of a
// gateway's traffic — GET and HEAD without a body, not an upgrade, to a
// plain-HTTP backend — over keep-alive connections of its own, on the
// request's goroutine. httputil.ReverseProxy with http.Transport spends
// two goroutine hand-offs per request (the persistConn read and write
// loops), a request clone and a trace hook; under load that was the
// largest share of gatehouse's CPU after the syscalls themselves.
//
// It keeps ReverseProxy's semantics (the differential test compares both):
// hop-by-hop headers and those a client names in Connection are dropped,
// except gatehouse's own forwarding and identity headers; "Te: trailers"
// passes; every 1xx answer is passed on; unparseable query parameters and
// anything unusual go the ReverseProxy way, which stays the path for
// bodies, upgrades and HTTPS backends.

// direct forwards one route's eligible requests.
type direct struct {
	pool *directPool
	// protected are the headers gatehouse itself sets for this route: a
	// client naming them in Connection does not remove them.
	protected map[string]bool
	// responseTimeout bounds the wait for the response head, as the
	// Transport's ResponseHeaderTimeout does on the ReverseProxy path.
	responseTimeout time.Duration
	// filterCookies removes cookies the backend may not set.
	filterCookies func(http.Header)
}

// newDirect sets up the direct path for a route, or returns nil for a
// backend it does not serve (HTTPS, or a base path or query to join).
func (c *Client) newDirect(r Route) *direct {
	u := r.URL
	if u.Scheme != "http" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.RawPath != "" {
		return nil
	}
	network, addr := "tcp", u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	if r.Socket != "" {
		network, addr = "unix", r.Socket
	}
	protected := make(map[string]bool, len(r.Protected))
	for _, k := range r.Protected {
		protected[k] = true
	}
	return &direct{pool: c.pools.pool(network, addr, r.IdleTimeout), protected: protected,
		responseTimeout: r.ResponseTimeout, filterCookies: r.FilterCookies}
}

// directEligible reports whether r can take the direct path.
func directEligible(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.ContentLength != 0 || (r.Body != nil && r.Body != http.NoBody) {
		return false
	}
	h := r.Header
	if _, ok := h["Upgrade"]; ok {
		return false
	}
	if _, ok := h["Expect"]; ok {
		return false
	}
	return cleanQuery(r.URL.RawQuery)
}

// cleanQuery reports whether ReverseProxy would forward the query as it is:
// it re-encodes (and drops parts of) queries with ';' or bad escapes, and
// those go its way so both paths send the same thing.
func cleanQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case ';':
			return false
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

var directRequestBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// hopByHop are dropped in both directions (RFC 9110 7.6.1), as ReverseProxy
// drops them.
var hopByHop = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true,
	"Proxy-Authenticate": true, "Proxy-Authorization": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// appendRequest writes r as an HTTP/1.1 request head. It reports false when
// a header cannot be sent as it is (a value with a line break, from a
// claim or a login name): ReverseProxy's Transport then refuses it with its
// usual error.
func (d *direct) appendRequest(b []byte, r *http.Request) ([]byte, bool) {
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.URL.EscapedPath()...)
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		b = append(b, '?')
		b = append(b, r.URL.RawQuery...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	if !httpguts.ValidHostHeader(r.Host) {
		return b, false
	}
	b = append(b, r.Host...)
	b = append(b, "\r\n"...)

	var named []string // headers the client named in Connection
	for f := range connectionTokens(r.Header["Connection"]) {
		named = append(named, textproto.CanonicalMIMEHeaderKey(f))
	}
	for k, vs := range r.Header {
		if hopByHop[k] || k == "Host" || k == "Content-Length" || k == "Forwarded" {
			continue
		}
		if len(named) > 0 && !d.protected[k] && slices.Contains(named, k) {
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return b, false
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return b, false
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, textproto.TrimString(v)...)
			b = append(b, "\r\n"...)
		}
	}
	if httpguts.HeaderValuesContainsToken(r.Header["Te"], "trailers") {
		b = append(b, "Te: trailers\r\n"...)
	}
	return append(b, "\r\n"...), true
}

// connectionTokens yields the header names listed in Connection values.
func connectionTokens(values []string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, v := range values {
			for f := range strings.SplitSeq(v, ",") {
				if f = textproto.TrimString(f); f != "" && !yield(f) {
					return
				}
			}
		}
	}
}

// errBackendProtocol is a response a plain request cannot be given.
var errBackendProtocol = errors.New("backend switched protocols on a request that asked for no upgrade")

// serve forwards r and reports whether it did; false means nothing was
// sent anywhere and the request should take the ReverseProxy path.
func (d *direct) serve(w http.ResponseWriter, r *http.Request) (bool, *Error) {
	bp := directRequestBufs.Get().(*[]byte)
	head, ok := d.appendRequest((*bp)[:0], r)
	defer func() {
		if cap(head) <= 64<<10 {
			*bp = head[:0]
			directRequestBufs.Put(bp)
		}
	}()
	if !ok {
		return false, nil
	}
	c, res, stop, err := d.roundTrip(w, r, head)
	if err != nil {
		return true, &Error{Err: err}
	}
	d.copyResponse(w, r, c, res, stop)
	return true, nil
}

// roundTrip sends the request head on a kept connection, or a new one, and
// reads the answer's head, passing 1xx answers on to w. A kept connection
// that the backend closed meanwhile fails before any answer, and the
// request is sent once more on a new one: GET and HEAD are safe to repeat.
// stop ends the watch on the client leaving; it reports false when the
// watch fired, which spoils the connection.
func (d *direct) roundTrip(w http.ResponseWriter, r *http.Request, head []byte) (c *directConn, res *http.Response, stop func() bool, err error) {
	ctx := r.Context()
	for attempt := 0; ; attempt++ {
		reused := false
		if attempt == 0 {
			c = d.pool.get(time.Now())
			reused = c != nil
		}
		if c == nil {
			if c, err = d.pool.dial(ctx); err != nil {
				return nil, nil, nil, err
			}
		}
		// The client leaving interrupts the exchange; the connection is
		// then closed rather than reused. The callback gets its own copy
		// of the connection: c changes below, possibly while a late
		// callback runs.
		conn := c.conn
		if d.responseTimeout > 0 {
			// Set before the callback below can run, so it never
			// overwrites the callback's deadline.
			_ = conn.SetReadDeadline(time.Now().Add(d.responseTimeout))
		}
		stop = context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(aLongTimeAgo) })
		_, err = c.conn.Write(head)
		c.limitHead(true)
		if err == nil {
			_, err = c.br.Peek(1)
		}
		if err != nil {
			stop()
			d.pool.discard(c)
			c = nil
			timedOut := errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil
			// One that only kept silent is not asked twice.
			if reused && ctx.Err() == nil && !timedOut {
				continue
			}
			if timedOut {
				err = fmt.Errorf("%w (%v)", errBackendTimeout, err)
			}
			return nil, nil, nil, err
		}
		if res, err = d.readHead(w, r, c); err != nil {
			stop()
			d.pool.discard(c)
			return nil, nil, nil, err
		}
		return c, res, stop, nil
	}
}

// readHead reads the final answer's head, passing informational answers
// on to w as they come.
func (d *direct) readHead(w http.ResponseWriter, r *http.Request, c *directConn) (*http.Response, error) {
	ctx := r.Context()
	res, err := http.ReadResponse(c.br, r)
	// Every informational answer passes on, a 100 Continue to a request
	// that sent no Expect too, however many come: under ReverseProxy,
	// which watches them with Got1xxResponse, the Transport passes each on
	// and gives the next head a header limit of its own; only the response
	// timeout bounds them all (golang/go src/net/http/transport.go,
	// persistConn.readResponse).
	for err == nil && res.StatusCode >= 100 && res.StatusCode < 200 && res.StatusCode != http.StatusSwitchingProtocols {
		forwardInformational(w, res)
		c.limitHead(true)
		res, err = http.ReadResponse(c.br, r)
	}
	c.limitHead(false)
	if d.responseTimeout > 0 && err == nil {
		// The head is in: the body may take as long as it takes. A
		// departing client's deadline is put back if it was set
		// meanwhile.
		_ = c.conn.SetReadDeadline(time.Time{})
		if ctx.Err() != nil {
			_ = c.conn.SetReadDeadline(aLongTimeAgo)
		}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("%w (%v)", errBackendTimeout, err)
	}
	if err == nil && res.StatusCode == http.StatusSwitchingProtocols {
		err = errBackendProtocol
	}
	return res, err
}

// forwardInformational passes a 1xx answer (103 Early Hints) to the client
// as ReverseProxy's Got1xxResponse does: its headers added to w's, written,
// and cleared. Serve has held back the headers set before forwarding, so
// the 1xx carries the backend's only.
func forwardInformational(w http.ResponseWriter, res *http.Response) {
	h := w.Header()
	copyHeaders(h, res.Header)
	w.WriteHeader(res.StatusCode)
	clear(h)
}

// copyHeaders adds src's values to dst. Slices of src are taken over where
// dst has none: src is a parsed response nobody else holds.
func copyHeaders(dst, src http.Header) {
	for k, vs := range src {
		if old, ok := dst[k]; ok {
			dst[k] = append(old[:len(old):len(old)], vs...)
		} else {
			dst[k] = vs
		}
	}
}

func (d *direct) copyResponse(w http.ResponseWriter, r *http.Request, c *directConn, res *http.Response, stop func() bool) {
	h := res.Header
	for f := range connectionTokens(h["Connection"]) {
		h.Del(f)
	}
	for k := range hopByHop {
		delete(h, k)
	}
	d.filterCookies(h)
	copyHeaders(w.Header(), h)
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		w.Header().Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)

	// As ReverseProxy with FlushInterval 0: streams of unknown length and
	// server-sent events reach the client write by write, and their
	// headers at once, before the backend sends any of the body.
	flush := res.ContentLength == -1
	if !flush {
		if ct := h["Content-Type"]; len(ct) > 0 && strings.Contains(ct[0], "event-stream") {
			base, _, _ := mime.ParseMediaType(ct[0])
			flush = base == "text/event-stream"
		}
	}
	rc := http.NewResponseController(w)
	if flush {
		_ = rc.Flush()
	}

	var readErr, writeErr error
	if !flush {
		if taken, re, we := d.spliceBody(w, r, c, res); taken {
			d.finish(w, r, c, res, announced, stop, re, we)
			return
		}
	}
	buf := bufPool.Get()
	for {
		n, err := res.Body.Read(buf)
		if n > 0 {
			if _, writeErr = w.Write(buf[:n]); writeErr != nil {
				break
			}
			if flush {
				_ = rc.Flush()
			}
		}
		if err != nil {
			if err != io.EOF {
				readErr = err
			}
			break
		}
	}
	bufPool.Put(buf)
	d.finish(w, r, c, res, announced, stop, readErr, writeErr)
}

// finish ends an exchange: the connection goes back to the pool when it
// can carry another request, the trailers to the client.
func (d *direct) finish(w http.ResponseWriter, r *http.Request, c *directConn, res *http.Response, announced int, stop func() bool, readErr, writeErr error) {
	if readErr != nil || writeErr != nil {
		stop()
		d.pool.discard(c)
		if readErr != nil && r.Context().Err() == nil {
			// The backend broke off mid-body: the client must see a
			// broken response, not a short one that looks complete.
			panic(http.ErrAbortHandler)
		}
		return
	}
	if len(res.Trailer) > 0 {
		// Chunked to the client so the trailers can follow.
		_ = http.NewResponseController(w).Flush()
		if len(res.Trailer) == announced {
			copyHeaders(w.Header(), res.Trailer)
		} else {
			for k, vs := range res.Trailer {
				for _, v := range vs {
					w.Header().Add(http.TrailerPrefix+k, v)
				}
			}
		}
	}
	// Reuse only a connection that is exactly at the end of an answer
	// the backend meant to keep alive, and whose deadline was never
	// touched by a departing client.
	if stop() && !res.Close && c.br.Buffered() == 0 {
		d.pool.put(c, time.Now())
	} else {
		d.pool.discard(c)
	}
}

var aLongTimeAgo = time.Unix(1, 0)
