// Package lan is the LAN door: HTTPS listeners on the home network that
// accept only clients from configured networks, with certificates that
// certmagic obtains by ACME DNS-01 and renews in the background.
package lan

import (
	"net"
	"net/netip"
)

// Filter wraps ln so that Accept hands on only connections from the allowed
// networks. Any other connection is closed at once, before a byte of TLS
// is read or written: a client outside the home network learns nothing,
// not even the certificate's names. refused, if set, hears of each one.
func Filter(ln net.Listener, allowed []netip.Prefix, refused func(netip.Addr)) net.Listener {
	return &filtered{Listener: ln, allowed: allowed, refused: refused}
}

type filtered struct {
	net.Listener
	allowed []netip.Prefix
	refused func(netip.Addr)
}

func (f *filtered) Accept() (net.Conn, error) {
	for {
		c, err := f.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := remoteAddr(c)
		if Allowed(addr, f.allowed) {
			return c, nil
		}
		_ = c.Close()
		if f.refused != nil {
			f.refused(addr)
		}
	}
}

// Allowed reports whether addr is in one of the networks. An address that
// cannot be read is never allowed.
func Allowed(addr netip.Addr, networks []netip.Prefix) bool {
	if !addr.IsValid() {
		return false
	}
	// ::ffff:192.168.1.5 is 192.168.1.5; a link-local address's zone
	// (fe80::1%eth0) would make every prefix miss it.
	addr = addr.Unmap().WithZone("")
	for _, p := range networks {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func remoteAddr(c net.Conn) netip.Addr {
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr()
	case nil:
		return netip.Addr{}
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}
		}
		return ap.Addr()
	}
}
