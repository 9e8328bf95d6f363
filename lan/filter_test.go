package lan

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"gatehouse/routes"
)

// fakeConn is one end of a pipe that claims a remote address.
type fakeConn struct {
	net.Conn
	remote net.Addr
}

func (c fakeConn) RemoteAddr() net.Addr { return c.remote }

// fakeListener hands out pipes whose remote addresses the test chooses,
// so the filter meets clients from anywhere without leaving loopback.
type fakeListener struct {
	conns chan net.Conn
}

func (l *fakeListener) Accept() (net.Conn, error) {
	c, ok := <-l.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}
func (l *fakeListener) Close() error   { return nil }
func (l *fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443} }

// dial makes a connection from addr and returns the client's end.
func (l *fakeListener) dial(addr string) net.Conn {
	client, server := net.Pipe()
	ap := netip.MustParseAddrPort(addr)
	l.conns <- fakeConn{Conn: server, remote: net.TCPAddrFromAddrPort(ap)}
	return client
}

func TestFilter(t *testing.T) {
	fl := &fakeListener{conns: make(chan net.Conn, 16)}
	var refused []netip.Addr
	ln := Filter(fl, routes.DefaultLANNetworks, func(a netip.Addr) { refused = append(refused, a) })
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"203.0.113.7:5000", false},      // the internet
		{"100.64.1.2:5000", false},       // CGNAT/tailnet addresses come by the tailnet door
		{"[2001:db8::1]:5000", false},    // global IPv6
		{"192.168.1.23:5000", true},      // home Wi-Fi
		{"10.1.2.3:5000", true},          // RFC 1918
		{"172.20.0.5:5000", true},        // RFC 1918
		{"172.32.0.5:5000", false},       // just outside 172.16/12
		{"[fd12:3456::9]:5000", true},    // ULA
		{"[fe80::1%eth0]:5000", true},    // link-local
		{"[::ffff:192.168.1.9]:1", true}, // v4-mapped
		{"[::ffff:8.8.8.8]:1", false},
	} {
		client := fl.dial(c.addr)
		got := make(chan net.Conn, 1)
		go func() {
			conn, err := ln.Accept()
			if err == nil {
				got <- conn
			}
		}()
		if c.want {
			select {
			case conn := <-got:
				conn.Close()
			case <-time.After(20 * time.Second): // hang guard
				t.Fatalf("%s: refused, want accepted", c.addr)
			}
			client.Close()
			continue
		}
		// Refused: closed before a byte is written (no TLS alert, no
		// certificate names), and never handed to the server.
		_ = client.SetDeadline(time.Now().Add(20 * time.Second)) // hang guard
		b, err := io.ReadAll(client)
		if len(b) != 0 || err != nil {
			t.Errorf("%s: read %q, %v from a refused connection, want EOF at once", c.addr, b, err)
		}
		client.Close()
		// Unblock the pending Accept with an allowed client.
		fl.dial("192.168.1.1:1").Close()
		(<-got).Close()
	}
	want := []string{"203.0.113.7", "100.64.1.2", "2001:db8::1", "172.32.0.5", "::ffff:8.8.8.8"}
	if len(refused) != len(want) {
		t.Fatalf("refused %v, want %v", refused, want)
	}
	for i, a := range refused {
		if a.String() != want[i] {
			t.Errorf("refused[%d] = %s, want %s", i, a, want[i])
		}
	}
}

// The plain-HTTP listener sends the door's hosts to HTTPS, keeping path
// and query, and nobody else anywhere.
func TestRedirect(t *testing.T) {
	d := &Door{o: DoorOptions{KnownHost: func(h string) bool { return h == "photos.example.com" }}}
	for _, c := range []struct {
		host, uri string
		port      string
		code      int
		location  string
	}{
		{"photos.example.com", "/albums?id=1", "", 308, "https://photos.example.com/albums?id=1"},
		{"photos.example.com:80", "/", "", 308, "https://photos.example.com/"},
		{"photos.example.com", "/", "8443", 308, "https://photos.example.com:8443/"},
		{"evil.example.net", "/", "", 404, ""},
	} {
		d.httpsPort = c.port
		req, _ := http.NewRequest("GET", "http://"+c.host+c.uri, nil)
		rec := &recorder{h: http.Header{}}
		d.redirectToHTTPS(rec, req)
		if rec.code != c.code || rec.h.Get("Location") != c.location {
			t.Errorf("%s%s: %d %q, want %d %q", c.host, c.uri, rec.code, rec.h.Get("Location"), c.code, c.location)
		}
	}
}

type recorder struct {
	h    http.Header
	code int
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(code int)        { r.code = code }
