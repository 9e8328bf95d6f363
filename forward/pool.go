package forward

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// directPool is the idle keep-alive connections to one backend address,
// shared by every route that forwards there and kept across reloads.
type directPool struct {
	network, addr string
	idleTimeout   time.Duration

	mu      sync.Mutex
	idle    []*directConn // most recently used last
	reaping bool
}

type directConn struct {
	conn      net.Conn
	in        headLimitReader // what br reads from
	br        *bufio.Reader
	idleSince time.Time
}

// maxResponseHead bounds what a backend may send before its body, as the
// Transport's MaxResponseHeaderBytes default does: a broken backend
// streaming an endless header line cannot grow gatehouse's memory.
const maxResponseHead = 10 << 20

var errResponseHeadTooLarge = errors.New("backend response headers exceed 10 MiB")

// headLimitReader reads the connection, and while a response head is being
// read, at most left bytes of it.
type headLimitReader struct {
	conn    net.Conn
	limited bool
	left    int64
}

func (h *headLimitReader) Read(p []byte) (int, error) {
	if !h.limited {
		return h.conn.Read(p)
	}
	if h.left <= 0 {
		return 0, errResponseHeadTooLarge
	}
	if int64(len(p)) > h.left {
		p = p[:h.left]
	}
	n, err := h.conn.Read(p)
	h.left -= int64(n)
	return n, err
}

func (c *directConn) limitHead(on bool) { c.in.limited, c.in.left = on, maxResponseHead }

// maxIdlePerBackend matches the Transport's MaxIdleConnsPerHost.
const maxIdlePerBackend = 1024

var directReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, copyBufferSize) }}

// get returns an idle connection, or nil when there is none.
func (p *directPool) get(now time.Time) *directConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if p.idleTimeout > 0 && now.Sub(c.idleSince) >= p.idleTimeout {
			c.conn.Close()
			continue
		}
		c.takeReader()
		return c
	}
	return nil
}

// takeReader lends the connection a read buffer from the shared pool;
// releaseReader gives it back. Only a connection in use holds one.
func (c *directConn) takeReader() {
	c.br = directReaders.Get().(*bufio.Reader)
	c.br.Reset(&c.in)
}

func (c *directConn) releaseReader() {
	if c.br != nil {
		c.br.Reset(nil)
		directReaders.Put(c.br)
		c.br = nil
	}
}

func (p *directPool) dial(ctx context.Context) (*directConn, error) {
	conn, err := upstreamDialer.DialContext(ctx, p.network, p.addr)
	if err != nil {
		return nil, err
	}
	c := &directConn{conn: conn, in: headLimitReader{conn: conn}}
	c.takeReader()
	return c, nil
}

// put keeps a connection whose last response was read to its end. Its
// reader goes back to the shared pool: an idle connection holds no buffer.
func (p *directPool) put(c *directConn, now time.Time) {
	c.releaseReader()
	c.idleSince = now
	p.mu.Lock()
	if len(p.idle) >= maxIdlePerBackend {
		p.mu.Unlock()
		c.conn.Close()
		return
	}
	p.idle = append(p.idle, c)
	startReaper := p.idleTimeout > 0 && !p.reaping
	p.reaping = p.reaping || startReaper
	p.mu.Unlock()
	if startReaper {
		go p.reap()
	}
}

// discard closes a connection that cannot carry another request.
func (p *directPool) discard(c *directConn) {
	c.conn.Close()
	c.releaseReader()
}

// reap closes connections idle for the idle timeout, checking four times
// per timeout, so none outlives it — the timeout is chosen to be shorter
// than the backend's own keep-alive, which avoids sending a request on a
// connection the backend is closing. It stops when nothing is idle.
func (p *directPool) reap() {
	tick := p.idleTimeout / 4
	for {
		time.Sleep(tick)
		cutoff := time.Now().Add(tick - p.idleTimeout)
		p.mu.Lock()
		// Oldest first: stop at the first one still fresh.
		n := 0
		for n < len(p.idle) && !p.idle[n].idleSince.After(cutoff) {
			p.idle[n].conn.Close()
			n++
		}
		rest := copy(p.idle, p.idle[n:])
		clear(p.idle[rest:])
		p.idle = p.idle[:rest]
		if len(p.idle) == 0 {
			p.reaping = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

func (p *directPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.idle {
		c.conn.Close()
	}
	clear(p.idle)
	p.idle = p.idle[:0]
}

// pools holds one directPool per backend address for the client's life.
type pools struct {
	mu    sync.Mutex
	pools map[string]*directPool
}

func (ps *pools) pool(network, addr string, idleTimeout time.Duration) *directPool {
	key := network + "\x00" + addr
	ps.mu.Lock()
	defer ps.mu.Unlock()
	// A pool whose idle timeout changed on reload is replaced; its idle
	// connections run out through its reaper.
	if p, ok := ps.pools[key]; ok && p.idleTimeout == idleTimeout {
		return p
	}
	if ps.pools == nil {
		ps.pools = make(map[string]*directPool)
	}
	p := &directPool{network: network, addr: addr, idleTimeout: idleTimeout}
	ps.pools[key] = p
	return p
}

func (ps *pools) closeIdle() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.pools {
		p.close()
	}
}
