package lan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"gatehouse/routes"
)

// DoorOptions configure a Door.
type DoorOptions struct {
	Config  *routes.LANConfig
	Handler http.Handler // the gateway's LAN door
	// KnownHost reports whether a host is on the LAN door: the redirect
	// listener sends only those to HTTPS, so it is no open redirector.
	KnownHost func(host string) bool
	Manager   *Manager
	// NewServer builds each http.Server (the gateway's timeouts and limits).
	NewServer func(http.Handler) *http.Server
	Log       *slog.Logger
	// Listeners and RedirectListeners, if set, are served instead of
	// listening on lan.listen and lan.redirect_listen (tests).
	Listeners, RedirectListeners []net.Listener
	// Refused, if set, hears of every client refused before TLS.
	Refused func(netip.Addr)
}

// Door is the LAN door with its listeners open.
type Door struct {
	o         DoorOptions
	https     []net.Listener
	redirect  []net.Listener
	srv       *http.Server
	redirSrv  *http.Server
	httpsPort string
	wg        sync.WaitGroup
}

// Open listens on the LAN door's addresses. Nothing is served until Serve.
func Open(o DoorOptions) (d *Door, err error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	d = &Door{o: o}
	defer func() {
		if err != nil {
			d.closeListeners()
		}
	}()
	refused := func(a netip.Addr) {
		o.Log.Debug("LAN door: connection from outside lan.networks refused", "client", a.String())
		if o.Refused != nil {
			o.Refused(a)
		}
	}
	open := func(given []net.Listener, addrs []string, what string) ([]net.Listener, error) {
		if given == nil {
			for _, a := range addrs {
				ln, err := net.Listen("tcp", a)
				if err != nil {
					return given, fmt.Errorf("lan door: %w (change %s; binding a port below 1024 needs CAP_NET_BIND_SERVICE)", err, what)
				}
				given = append(given, ln)
			}
		}
		out := make([]net.Listener, len(given))
		for i, ln := range given {
			out[i] = Filter(ln, o.Config.Networks, refused)
		}
		return out, nil
	}
	if d.https, err = open(o.Listeners, o.Config.Listen, "lan.listen"); err != nil {
		return d, err
	}
	if d.redirect, err = open(o.RedirectListeners, o.Config.RedirectListen, "lan.redirect_listen"); err != nil {
		return d, err
	}
	if len(d.https) > 0 {
		if _, port, err := net.SplitHostPort(d.https[0].Addr().String()); err == nil && port != "443" {
			d.httpsPort = port
		}
	}
	d.srv = o.NewServer(o.Handler)
	d.srv.TLSConfig = o.Manager.TLSConfig()
	d.redirSrv = o.NewServer(http.HandlerFunc(d.redirectToHTTPS))
	return d, nil
}

// Addrs are the HTTPS addresses the door listens on.
func (d *Door) Addrs() []net.Addr {
	var out []net.Addr
	for _, ln := range d.https {
		out = append(out, ln.Addr())
	}
	return out
}

// RedirectAddrs are the plain-HTTP addresses.
func (d *Door) RedirectAddrs() []net.Addr {
	var out []net.Addr
	for _, ln := range d.redirect {
		out = append(out, ln.Addr())
	}
	return out
}

// Serve serves every listener until Shutdown. A listener that fails is
// logged; the other doors go on.
func (d *Door) Serve() {
	serve := func(ln net.Listener, f func(net.Listener) error, what string) {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := f(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.o.Log.Error("LAN door listener failed", "listen", ln.Addr().String(), "what", what, "err", err)
			}
		}()
	}
	for _, ln := range d.https {
		// The certificate comes from TLSConfig; ServeTLS adds HTTP/2.
		serve(ln, func(ln net.Listener) error { return d.srv.ServeTLS(ln, "", "") }, "https")
	}
	for _, ln := range d.redirect {
		serve(ln, d.redirSrv.Serve, "redirect")
	}
	var addrs []string
	for _, a := range d.Addrs() {
		addrs = append(addrs, a.String())
	}
	d.o.Log.Info("lan door open", "listen", addrs, "redirect", len(d.redirect), "networks", len(d.o.Config.Networks))
}

// Shutdown drains both servers within ctx, then closes what is left.
func (d *Door) Shutdown(ctx context.Context) {
	for _, s := range []*http.Server{d.srv, d.redirSrv} {
		if err := s.Shutdown(ctx); err != nil {
			_ = s.Close()
		}
	}
	d.closeListeners()
	d.wg.Wait()
}

func (d *Door) closeListeners() {
	for _, ln := range append(append([]net.Listener(nil), d.https...), d.redirect...) {
		_ = ln.Close()
	}
}

// redirectToHTTPS sends a LAN host's plain-HTTP request to the same URL
// over HTTPS; anything else gets 404, as an unknown host does on a door.
func (d *Door) redirectToHTTPS(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if d.o.KnownHost == nil || !d.o.KnownHost(host) {
		http.NotFound(w, r)
		return
	}
	if d.httpsPort != "" {
		host = net.JoinHostPort(host, d.httpsPort)
	}
	w.Header().Set("Connection", "close")
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

// WarnBefore is how close to expiry a certificate that cannot be renewed
// makes a warning: Let's Encrypt's certificates last 90 days (fewer soon)
// and certmagic renews a third before the end, so a week left means
// renewal has been failing for weeks.
const WarnBefore = 7 * 24 * time.Hour
