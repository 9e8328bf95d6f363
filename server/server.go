// Package server is the running gateway: it opens the doors (the
// Cloudflare listener, the tailnet nodes, the LAN door) and the metrics listener, keeps
// the route table in step with routes.hcl (Reload, with the reload table
// of reload.go deciding what applies at once and what waits for a
// restart), and drains the doors when it stops. The request path itself
// lives in proxy/.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"tailscale.com/tsnet"

	"gatehouse/accesslog"
	"gatehouse/dashboard"
	"gatehouse/health"
	"gatehouse/lan"
	"gatehouse/metrics"
	"gatehouse/proxy"
	"gatehouse/ratelimit"
	"gatehouse/routes"
	"gatehouse/sdnotify"
	"gatehouse/tailnet"
)

// Options configure a Server. ConfigPath and Config are required; the rest
// have working zero values.
type Options struct {
	ConfigPath string
	Config     *routes.Config // as loaded from ConfigPath
	Log        *slog.Logger
	AccessLog  bool
	// AccessLogFile, if set, receives every request in the Combined Log
	// Format (accesslog/); a value on ReopenLog reopens it (SIGUSR1,
	// after logrotate moved it).
	AccessLogFile string
	ReopenLog     <-chan struct{}
	// Reload receives a value for every reload request (SIGHUP).
	Reload <-chan struct{}
	// Watch re-reads the file when it changes on disk.
	Watch bool
	// Notify tells systemd about readiness, reloads, stopping and the
	// watchdog (Type=notify); nil sends nothing.
	Notify *sdnotify.Notifier

	// CloudflareListener and MetricsListener, if set, are served instead
	// of listening on cloudflare.listen and metrics.listen.
	CloudflareListener net.Listener
	MetricsListener    net.Listener
	// LANListeners and LANRedirectListeners, if set, are served instead of
	// listening on lan.listen and lan.redirect_listen.
	LANListeners, LANRedirectListeners []net.Listener
	// LANManager, if set, adjusts the LAN door's certificate manager
	// (tests point it at their ACME server and DNS).
	LANManager func(*lan.ManagerOptions)
	// Reloaded, if set, is called after every reload attempt.
	Reloaded func(error)
	// TailnetStarted, if set, runs as each tailnet node starts (tests
	// inject certificates here).
	TailnetStarted func(name string, s *tsnet.Server)
	// OIDCClient, if set, talks to the sign-in provider (tests trust their
	// provider's certificate here).
	OIDCClient *http.Client
	// HealthChanged, if set, is called when a backend check changes a
	// route's state (tests wait on it).
	HealthChanged func(health.State)
}

// Server is a gateway with its listeners open, ready to Run.
type Server struct {
	opt     Options
	log     *slog.Logger
	gw      *proxy.Gateway
	limits  *ratelimit.Registry
	metrics *metrics.Metrics
	signIns *signInSwitch
	health  *health.Checker
	// refusals and reloadLog keep what the dashboard shows.
	refusals  *dashboard.Refusals
	reloadLog *dashboard.Reloads
	dash      *dashboard.Dashboard
	clf       *accesslog.File // nil: no Combined Log Format file

	cloudflare     net.Listener
	cloudflareSrv  *http.Server
	metricsLn      net.Listener
	metricsSrv     *http.Server
	watcher        *routes.Watcher
	nodes          *tailnet.Nodes // nil: the tailnet door is off
	lan            *lanDoor       // nil: the LAN door is off
	reloadMu       sync.Mutex     // one reload at a time
	closeOnFailure []func()
}

// New builds the gateway for o.Config and opens its listeners; nothing is
// served until Run. An error names the setting to change.
func New(o Options) (s *Server, err error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	cfg := o.Config
	s = &Server{opt: o, log: o.Log}
	defer func() {
		if err != nil {
			for _, f := range s.closeOnFailure {
				f()
			}
		}
	}()
	s.limits = ratelimit.NewRegistry(maxClients(cfg))
	s.metrics = metrics.New(func() (int, uint64, uint64) {
		st := s.limits.Store()
		return st.Len(), st.Evictions(), st.Freed()
	})
	// Backend checks start with the gateway: the 502 page and the
	// dashboard know a service is down before anyone asks it.
	s.health = health.New(health.Options{Log: o.Log, Metrics: s.metrics, Changed: o.HealthChanged})
	s.health.Sync(cfg.Routes)
	s.closeOnFailure = append(s.closeOnFailure, s.health.Close)
	s.refusals, s.reloadLog = dashboard.NewRefusals(20), dashboard.NewReloads(20)
	if o.AccessLogFile != "" {
		if s.clf, err = accesslog.Open(o.AccessLogFile); err != nil {
			return nil, fmt.Errorf("%w (change -access-log-file)", err)
		}
		s.closeOnFailure = append(s.closeOnFailure, func() { s.clf.Close() })
	}
	s.gw = proxy.New(routes.Compile(cfg), proxy.Options{Logger: o.Log, AccessLog: o.AccessLog, Limits: s.limits, Metrics: s.metrics,
		Health: s.health, Answered: s.answered})
	s.closeOnFailure = append(s.closeOnFailure, s.gw.Close)
	// Family sign-in discovers its provider in the background: a provider
	// that is down never delays the doors.
	s.signIns = &signInSwitch{gw: s.gw, log: o.Log, client: o.OIDCClient, limits: s.limits,
		outcome: func(outcome string) { s.metrics.SignIns.WithLabelValues(outcome).Inc() }}
	s.signIns.update(cfg.OIDC)
	s.closeOnFailure = append(s.closeOnFailure, s.signIns.close)
	s.dash = s.newDashboard()

	if err := s.listenMetrics(); err != nil {
		return nil, err
	}
	if s.cloudflare = o.CloudflareListener; s.cloudflare == nil {
		if s.cloudflare, err = net.Listen("tcp", cfg.Cloudflare.Listen); err != nil {
			return nil, fmt.Errorf("cloudflare door: %w (is another gatehouse running? change cloudflare.listen in %s)", err, o.ConfigPath)
		}
	}
	s.closeOnFailure = append(s.closeOnFailure, func() { s.cloudflare.Close() })
	s.cloudflareSrv = newHTTPServer(portalHost(s.gw.Table, s.gw.Door(routes.Cloudflare)), cfg.Server, o.Log)
	s.openLAN()
	// Watch before serving: once a request is answered, every later
	// change to the file is seen.
	if o.Watch {
		if s.watcher, err = routes.NewWatcher(o.ConfigPath); err != nil {
			o.Log.Warn("not watching the route table; reload with SIGHUP", "err", err)
			err = nil
		}
	}
	// The tailnet door starts in the background: a tailnet that cannot
	// start never keeps the Cloudflare door closed.
	s.startTailnet()
	return s, nil
}

func maxClients(cfg *routes.Config) int {
	if cfg.Limit != nil && cfg.Limit.MaxClients > 0 {
		return cfg.Limit.MaxClients
	}
	return 100_000
}

// CloudflareAddr is the address the Cloudflare door listens on.
func (s *Server) CloudflareAddr() net.Addr { return s.cloudflare.Addr() }

// MetricsAddr is the metrics listener's address, nil without one.
func (s *Server) MetricsAddr() net.Addr {
	if s.metricsLn == nil {
		return nil
	}
	return s.metricsLn.Addr()
}

// Metrics are the gateway's metrics.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Gateway is the request handler behind every door.
func (s *Server) Gateway() *proxy.Gateway { return s.gw }

// answered sees every request a door answered.
func (s *Server) answered(a proxy.Answer) {
	s.refusals.Record(a)
	if s.clf != nil {
		s.clf.Write(a)
	}
}

// Health is the backend checker.
func (s *Server) Health() *health.Checker { return s.health }

// Nodes is the running tailnet node set, nil while the tailnet door is off.
func (s *Server) Nodes() *tailnet.Nodes { return s.nodes }

// Run serves every door until ctx ends, then drains them within
// server.shutdown_timeout. It returns an error only when the Cloudflare
// door fails.
func (s *Server) Run(ctx context.Context) error {
	defer s.gw.Close()
	defer s.signIns.close()
	defer s.health.Close()
	if s.metricsSrv != nil {
		go func() { _ = s.metricsSrv.Serve(s.metricsLn) }()
		defer s.metricsSrv.Close()
		s.log.Info("metrics listening", "listen", s.metricsLn.Addr().String(), "paths", "/metrics /bans")
	}
	stopSweep := s.sweepIdleClients(ctx)
	defer stopSweep()

	serveErr := make(chan error, 1)
	go func() { serveErr <- s.cloudflareSrv.Serve(s.cloudflare) }()
	s.log.Info("cloudflare door open", "listen", s.cloudflare.Addr().String(), "routes", len(s.opt.Config.Routes))
	stopWatchdog := s.notifyReady()
	defer stopWatchdog()

	if s.nodes != nil {
		defer s.nodes.Close()
	}
	if s.lan != nil {
		// Certificates are the LAN door's own: one that cannot be had
		// never keeps the other doors closed.
		s.lan.run(ctx)
	}

	watchCtx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	if s.watcher != nil {
		go s.watch(watchCtx)
	}
	for {
		select {
		case <-s.opt.Reload:
			_ = s.Reload("reload requested")
			continue
		case <-s.opt.ReopenLog:
			if s.clf != nil {
				if err := s.clf.Reopen(); err != nil {
					s.log.Error("access log file not reopened; lines go to the old one", "err", err)
				} else {
					s.log.Info("access log file reopened", "file", s.opt.AccessLogFile)
				}
			}
			continue
		case err := <-serveErr:
			return fmt.Errorf("cloudflare door: %w", err)
		case <-ctx.Done():
		}
		break
	}
	s.drain()
	return nil
}

// sweepIdleClients forgets idle clients even when no new ones arrive.
func (s *Server) sweepIdleClients(ctx context.Context) (stop func()) {
	ctx, stop = context.WithCancel(ctx)
	go func() {
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				s.limits.Store().Sweep()
			}
		}
	}()
	return stop
}

// notifyReady tells systemd (Type=notify) the gateway is ready once the
// Cloudflare door listens, and feeds its watchdog until the returned stop
// is called, so a long drain is not killed.
func (s *Server) notifyReady() (stop func()) {
	if err := s.opt.Notify.Ready(); err != nil {
		s.log.Warn("cannot notify systemd", "err", err)
	}
	wd, ok, err := sdnotify.WatchdogInterval()
	if err != nil {
		s.log.Warn("systemd watchdog off", "err", err)
	}
	if !ok || err != nil {
		return func() {}
	}
	ctx, stop := context.WithCancel(context.Background())
	go s.opt.Notify.RunWatchdog(ctx, wd/2)
	return stop
}

func (s *Server) startTailnet() {
	tc := s.opt.Config.Tailnet
	if tc == nil {
		return
	}
	if ok, why := tailnet.Enabled(tc); !ok {
		s.log.Warn(why)
		return
	}
	s.nodes = tailnet.Start(tc, s.gw.Table(), tailnet.Options{
		Handlers: dashboardHandlers{s}, Log: s.log, Server: s.opt.Config.Server, Started: s.opt.TailnetStarted,
	})
	s.metrics.TailnetNodes.WithLabelValues("kept").Set(float64(len(s.nodes.Running())))
}

// watch reloads on every change of the file. A watcher error (an inotify
// queue overflow, a directory that went away) ends one watch, not
// watching: it starts again, and re-reads the file in case a change was
// missed meanwhile.
func (s *Server) watch(ctx context.Context) {
	w := s.watcher
	for {
		err := w.Run(ctx, 300*time.Millisecond, func() { _ = s.Reload("file changed") })
		if err == nil || ctx.Err() != nil {
			return
		}
		s.log.Warn("route table watch failed; retrying in 5s (SIGHUP reloads meanwhile)", "err", err)
		for w = nil; w == nil; {
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Second):
			}
			if w, err = routes.NewWatcher(s.opt.ConfigPath); err != nil {
				s.log.Warn("route table watch failed; retrying in 5s", "err", err)
			}
		}
		_ = s.Reload("watch restarted")
	}
}

// drain lets running requests finish within the shutdown timeout in force,
// then closes what is left.
func (s *Server) drain() {
	timeout := s.gw.Table().Config.Server.ShutdownTimeout
	_ = s.opt.Notify.Stopping()
	s.log.Info("draining", "timeout", timeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	if s.lan != nil {
		wg.Go(func() { s.lan.shutdown(ctx) })
	}
	if err := s.cloudflareSrv.Shutdown(ctx); err != nil {
		s.log.Warn("drain deadline passed; closing remaining connections", "err", err)
		_ = s.cloudflareSrv.Close()
	}
	wg.Wait()
}

// newHTTPServer is the http.Server of a door or of the metrics listener.
func newHTTPServer(h http.Handler, sc routes.ServerConfig, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: sc.ReadHeaderTimeout,
		IdleTimeout:       sc.IdleTimeout,
		MaxHeaderBytes:    sc.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		// The direct path watches a plain client socket while it splices
		// a large body to it (forward/splice_linux.go).
		ConnContext: proxy.ConnContext,
	}
}

// errRejected marks a reload whose file did not validate.
var errRejected = errors.New("reload rejected")
