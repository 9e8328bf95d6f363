package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gatehouse/lan"
	"gatehouse/routes"
)

// lanDoor is the running LAN door and its certificates.
type lanDoor struct {
	door *lan.Door
	mgr  *lan.Manager
	dir  string
	log  *slog.Logger
	wg   sync.WaitGroup // the status writer
}

// openLAN opens the LAN door's listeners. A door that cannot open (its
// address not up yet, the port taken) is logged and left shut: the other
// doors serve on.
func (s *Server) openLAN() {
	lc := s.opt.Config.LAN
	if lc == nil {
		return
	}
	mo := lan.ManagerOptions{Config: lc, Names: routes.LANNames(s.opt.Config), Log: s.log}
	if s.opt.LANManager != nil {
		s.opt.LANManager(&mo)
	}
	mgr := lan.NewManager(mo)
	refused := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gatehouse_lan_refused_total", Help: "Connections to the LAN door from outside lan.networks, closed before TLS.",
	})
	door, err := lan.Open(lan.DoorOptions{
		Config: lc, Handler: s.gw.Door(routes.LAN), Manager: mgr, Log: s.log,
		KnownHost: func(host string) bool { return s.gw.Table().HasHost(routes.LAN, host) },
		NewServer: func(h http.Handler) *http.Server { return newHTTPServer(h, s.opt.Config.Server, s.log) },
		Listeners: s.opt.LANListeners, RedirectListeners: s.opt.LANRedirectListeners,
		Refused: func(netip.Addr) { refused.Inc() },
	})
	if err != nil {
		s.log.Error("the LAN door stays shut; the other doors serve", "err", err)
		mgr.Stop()
		return
	}
	s.lan = &lanDoor{door: door, mgr: mgr, dir: lc.StateDir, log: s.log}
	s.closeOnFailure = append(s.closeOnFailure, func() { door.Shutdown(context.Background()); mgr.Stop() })
	status := func() lan.Status { return mgr.Status() }
	s.metrics.Registry.MustRegister(refused,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gatehouse_lan_certificate_ready", Help: "1 when every LAN name has a valid certificate, else 0 (the LAN door refuses TLS for the others).",
		}, func() float64 {
			if status().Ready {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gatehouse_lan_certificate_expiry_timestamp_seconds", Help: "When the LAN door's first certificate to expire does (Unix time); 0 without one.",
		}, func() float64 {
			if e := status().Expires; !e.IsZero() {
				return float64(e.Unix())
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gatehouse_lan_certificate_renewal_failing", Help: "1 while the last renewal of a LAN certificate failed and the old one is served until it expires (see the expiry timestamp), else 0.",
		}, func() float64 {
			if status().RenewalFailing {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gatehouse_lan_certificate_failures_total", Help: "Failed attempts to obtain or renew a LAN certificate.",
		}, func() float64 { return float64(status().Failures) }),
	)
}

// run serves the door, starts its certificates (stored ones at once, the
// rest in the background) and keeps the status file for `gatehouse check`
// until ctx ends.
func (l *lanDoor) run(ctx context.Context) {
	l.door.Serve()
	if err := l.mgr.Start(ctx); err != nil {
		l.log.Error("LAN certificates", "err", err)
	}
	l.wg.Go(func() {
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			l.saveStatus()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
}

func (l *lanDoor) saveStatus() {
	st := l.mgr.Status()
	if err := lan.WriteStatus(l.dir, st); err != nil {
		l.log.Warn("cannot save the LAN status for gatehouse check", "err", err)
	}
	for _, p := range st.Problems(lan.WarnBefore) {
		if len(st.Missing) == 0 {
			l.log.Warn(p)
		}
	}
}

// shutdown runs once ctx of run has ended.
func (l *lanDoor) shutdown(ctx context.Context) {
	l.door.Shutdown(ctx)
	l.wg.Wait()
	l.saveStatus()
	l.mgr.Stop()
}
