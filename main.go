// Command gatehouse stands at every door of a home server: it routes
// hostnames to services on localhost according to routes.hcl, deciding per
// door who may pass.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"tailscale.com/tsnet"

	"gatehouse/metrics"
	"gatehouse/proxy"
	"gatehouse/ratelimit"
	"gatehouse/routes"
	"gatehouse/sdnotify"
	"gatehouse/signin"
	"gatehouse/tailnet"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = ""

const usage = `gatehouse — one gateway for every door of a home server.

It reads a route table (routes.hcl) and forwards each request to a service
on this machine, or refuses it, depending on which door it came through:
the loopback listener cloudflared forwards to, or the tailnet.

Usage:
  gatehouse [run] [-config routes.hcl]   serve (the default command)
  gatehouse check [-config routes.hcl]   validate the file, print every problem
  gatehouse routes [-config routes.hcl]  print who can reach what, through which door
  gatehouse login [-config routes.hcl]   join the tailnet without an auth key (prints login URLs)
  gatehouse tokens list|revoke …         list or revoke family device tokens (gatehouse tokens -h)
  gatehouse version                      print the version

A running gateway re-reads the file when it changes or on SIGHUP, and keeps
the running table if the new one has errors.

Flags (run, check and routes):
`

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

func cli(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	if cmd == "tokens" {
		return tokensCommand(args, stdout, stderr)
	}
	fs := flag.NewFlagSet("gatehouse "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	config := fs.String("config", "routes.hcl", "the route table `file`")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	accessLog := fs.Bool("access-log", true, "log one line per request")
	switch cmd {
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "gatehouse", buildVersion())
		return 0
	case "help", "-h", "-help", "--help":
		fs.Usage()
		return 0
	case "run", "check", "routes", "login":
	default:
		fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n", cmd)
		fs.Usage()
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gatehouse %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return 2
	}

	cfg, file, diags := routes.Load(*config)
	if cfg == nil {
		routes.WriteDiagnostics(stderr, diags, file)
		fmt.Fprintf(stderr, "%s: %d errors; nothing changed\n", *config, errorCount(diags))
		return 1
	}
	switch cmd {
	case "check":
		routes.WriteDiagnostics(stderr, diags, file)
		fmt.Fprintln(stdout, routes.Summary(cfg))
		return 0
	case "login":
		if cfg.Tailnet == nil {
			fmt.Fprintf(stderr, "gatehouse login: %s has no tailnet block\n", *config)
			return 1
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := tailnet.Login(ctx, cfg.Tailnet, routes.Compile(cfg), stdout); err != nil {
			fmt.Fprintln(stderr, "gatehouse login:", err)
			return 1
		}
		return 0
	case "routes":
		if err := routes.WriteMatrix(stdout, cfg); err != nil {
			fmt.Fprintln(stderr, "gatehouse routes:", err)
			return 1
		}
		return 0
	}

	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 2
	}
	for _, d := range cfg.Warnings {
		log.Warn(routes.FormatDiagnostic(d))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	err = serve(ctx, serveOptions{
		configPath: *config, config: cfg, log: log, accessLog: *accessLog, reload: reload, watch: true,
		notify: sdnotify.FromEnv(),
	})
	if err != nil {
		log.Error("gatehouse stopped", "err", err)
		return 1
	}
	return 0
}

func errorCount(diags interface{ Errs() []error }) int { return len(diags.Errs()) }

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: use text or json", format)
}

type serveOptions struct {
	configPath string
	config     *routes.Config
	log        *slog.Logger
	accessLog  bool
	// reload receives a value for every reload request (SIGHUP).
	reload <-chan struct{}
	// watch re-reads the file when it changes on disk.
	watch bool
	// cloudflareListener, if set, is used instead of listening on
	// cloudflare.listen (tests listen on an ephemeral port).
	cloudflareListener net.Listener
	// ready, if set, is called with the door addresses once they listen.
	ready func(cloudflare net.Addr)
	// reloaded, if set, is called after every reload attempt.
	reloaded func(error)
	// tailnetStarted, if set, runs as each tailnet node starts (tests
	// inject certificates here).
	tailnetStarted func(name string, s *tsnet.Server)
	// nodes, if set, receives the running tailnet node set.
	nodes func(*tailnet.Nodes)
	// notify tells systemd about readiness, reloads, stopping and the
	// watchdog (Type=notify); nil (tests) sends nothing.
	notify *sdnotify.Notifier
	// metricsListener, if set, serves metrics instead of metrics.listen.
	metricsListener net.Listener
	// metrics, if set, receives the gateway's metrics.
	metrics func(*metrics.Metrics)
	// oidcClient, if set, talks to the sign-in provider (tests trust
	// their provider's certificate here).
	oidcClient *http.Client
}

// serve runs the doors until ctx ends, then drains them.
func serve(ctx context.Context, o serveOptions) error {
	cfg := o.config
	maxClients := 100_000
	if cfg.Limit != nil && cfg.Limit.MaxClients > 0 {
		maxClients = cfg.Limit.MaxClients
	}
	limits := ratelimit.NewRegistry(maxClients)
	mt := metrics.New(func() (int, uint64, uint64) {
		st := limits.Store()
		return st.Len(), st.Evictions(), st.Freed()
	})
	gw := proxy.New(routes.Compile(cfg), proxy.Options{Logger: o.log, AccessLog: o.accessLog, Limits: limits, Metrics: mt})
	defer gw.Close()
	// Family sign-in starts discovering its provider in the background:
	// a provider that is down never delays the doors.
	signIns := &signInSwitch{gw: gw, log: o.log, client: o.oidcClient, limits: limits,
		outcome: func(outcome string) { mt.SignIns.WithLabelValues(outcome).Inc() }}
	signIns.update(cfg.OIDC)
	defer signIns.close()
	if o.metrics != nil {
		o.metrics(mt)
	}

	// Idle clients are forgotten even when no new ones arrive.
	sweepCtx, stopSweep := context.WithCancel(ctx)
	defer stopSweep()
	go func() {
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-sweepCtx.Done():
				return
			case <-tick.C:
				limits.Store().Sweep()
			}
		}
	}()

	// Metrics and the ban list live on a listener of their own, never
	// behind a door.
	if cfg.Metrics != nil || o.metricsListener != nil {
		mln := o.metricsListener
		if mln == nil {
			var err error
			if mln, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
				return fmt.Errorf("metrics listener: %w (change metrics.listen in %s)", err, o.configPath)
			}
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", mt.Handler())
		// Profiles for the admin, on the same loopback-only listener.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /bans", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			bans := limits.Bans(time.Now())
			if bans == nil {
				bans = []ratelimit.Ban{}
			}
			_ = json.NewEncoder(w).Encode(bans)
		})
		msrv := newServer(mux, cfg.Server, o.log)
		go func() { _ = msrv.Serve(mln) }()
		defer msrv.Close()
		o.log.Info("metrics listening", "listen", mln.Addr().String(), "paths", "/metrics /bans")
	}

	ln := o.cloudflareListener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", cfg.Cloudflare.Listen)
		if err != nil {
			return fmt.Errorf("cloudflare door: %w (is another gatehouse running? change cloudflare.listen in %s)", err, o.configPath)
		}
	}
	srv := newServer(gw.Door(routes.Cloudflare), cfg.Server, o.log)
	serveErr := make(chan error, 1)
	// Watch before serving: once a request is answered, every later
	// change to the file is seen.
	var watcher *routes.Watcher
	if o.watch {
		var err error
		if watcher, err = routes.NewWatcher(o.configPath); err != nil {
			o.log.Warn("not watching the route table; reload with SIGHUP", "err", err)
		}
	}
	go func() { serveErr <- srv.Serve(ln) }()
	o.log.Info("cloudflare door open", "listen", ln.Addr().String(), "routes", len(cfg.Routes))
	if o.ready != nil {
		o.ready(ln.Addr())
	}
	// systemd (Type=notify): ready once the Cloudflare door listens. The
	// watchdog is fed until serve returns, so a long drain is not killed.
	if err := o.notify.Ready(); err != nil {
		o.log.Warn("cannot notify systemd", "err", err)
	}
	if wd, ok, err := sdnotify.WatchdogInterval(); err != nil {
		o.log.Warn("systemd watchdog off", "err", err)
	} else if ok {
		wdCtx, stopWatchdog := context.WithCancel(context.Background())
		defer stopWatchdog()
		go o.notify.RunWatchdog(wdCtx, wd/2)
	}

	// The tailnet door starts in the background: a tailnet that cannot
	// start never keeps the Cloudflare door from serving.
	var nodes *tailnet.Nodes
	if tc := cfg.Tailnet; tc != nil {
		if ok, why := tailnet.Enabled(tc); !ok {
			o.log.Warn(why)
		} else {
			nodes = tailnet.Start(tc, gw.Table(), tailnet.Options{
				Handlers: gw, Log: o.log, Server: cfg.Server, Started: o.tailnetStarted,
			})
			defer nodes.Close()
			mt.TailnetNodes.WithLabelValues("kept").Set(float64(len(nodes.Running())))
			if o.nodes != nil {
				o.nodes(nodes)
			}
		}
	}

	var mu sync.Mutex
	doReload := func(why string) {
		mu.Lock()
		defer mu.Unlock()
		_ = o.notify.Reloading()
		defer func() { _ = o.notify.Ready() }() // also after a rejected file: the old table serves
		t, err := reloadTable(gw, o.configPath, why, o.log)
		if err == nil && nodes != nil {
			nodes.Sync(t)
			mt.TailnetNodes.WithLabelValues("kept").Set(float64(len(nodes.Running())))
		}
		if err == nil {
			signIns.update(t.Config.OIDC)
		}
		if err != nil {
			mt.Reloads.WithLabelValues("rejected").Inc()
		} else {
			mt.Reloads.WithLabelValues("ok").Inc()
		}
		if o.reloaded != nil {
			o.reloaded(err)
		}
	}
	watchCtx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	if watcher != nil {
		go func() {
			// A watcher error (an inotify queue overflow, a directory that
			// went away) ends one watch, not watching: start again, and
			// re-read the file in case a change was missed meanwhile.
			for {
				err := watcher.Run(watchCtx, 300*time.Millisecond, func() { doReload("file changed") })
				if err == nil || watchCtx.Err() != nil {
					return
				}
				o.log.Warn("route table watch failed; retrying in 5s (SIGHUP reloads meanwhile)", "err", err)
				for watcher = nil; watcher == nil; {
					select {
					case <-watchCtx.Done():
						return
					case <-time.After(5 * time.Second):
					}
					if watcher, err = routes.NewWatcher(o.configPath); err != nil {
						o.log.Warn("route table watch failed; retrying in 5s", "err", err)
					}
				}
				doReload("watch restarted")
			}
		}()
	}

	for {
		select {
		case <-o.reload:
			doReload("reload requested")
			continue
		case err := <-serveErr:
			return fmt.Errorf("cloudflare door: %w", err)
		case <-ctx.Done():
		}
		break
	}

	timeout := gw.Table().Config.Server.ShutdownTimeout
	_ = o.notify.Stopping()
	o.log.Info("draining", "timeout", timeout)
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		o.log.Warn("drain deadline passed; closing remaining connections", "err", err)
		_ = srv.Close()
	}
	return nil
}

// reloadTable reads, validates and swaps in a new table. On any error the
// running table stays in force.
func reloadTable(gw *proxy.Gateway, path, why string, log *slog.Logger) (*routes.Table, error) {
	cfg, _, diags := routes.Load(path)
	if cfg == nil {
		for _, d := range diags {
			log.Error("reload rejected: "+routes.FormatDiagnostic(d), "why", why)
		}
		return nil, fmt.Errorf("reload of %s rejected: %w", path, diags)
	}
	old := gw.Table().Config
	if cfg.Cloudflare.Listen != old.Cloudflare.Listen {
		log.Warn("cloudflare.listen changed; the door keeps its address until restart",
			"running", old.Cloudflare.Listen, "file", cfg.Cloudflare.Listen)
	}
	if cfg.Server != old.Server {
		log.Warn("server settings changed; they apply after restart")
	}
	for _, d := range cfg.Warnings {
		log.Warn(routes.FormatDiagnostic(d))
	}
	if !reflect.DeepEqual(tailnetIdentity(cfg.Tailnet), tailnetIdentity(old.Tailnet)) {
		log.Warn("tailnet node settings changed; they apply after restart (admins and routes apply now)")
	}
	t := routes.Compile(cfg)
	gw.Swap(t)
	log.Info("route table reloaded", "why", why, "summary", routes.Summary(cfg))
	return t, nil
}

// tailnetIdentity is the part of the tailnet block that running nodes were
// started with; admins are read per request and apply at once.
func tailnetIdentity(tc *routes.TailnetConfig) *routes.TailnetConfig {
	if tc == nil {
		return nil
	}
	c := *tc
	c.Admins, c.AdminCapability, c.Range = nil, "", hcl.Range{}
	return &c
}

// signInSwitch keeps family sign-in in step with the route table. It is
// built from the oidc block at start and again on every good reload (which
// also re-reads the client secret and cookie key files); the new one keeps
// the old one's discovered provider and revocations when the provider is
// the same, so a reload neither blips family routes to 503 nor brings a
// logged-out session back. If it cannot be built (unreadable secret or key
// file) the running one stays, or family routes fail closed with 503.
type signInSwitch struct {
	gw      *proxy.Gateway
	log     *slog.Logger
	client  *http.Client
	outcome func(string) // gatehouse_signins_total
	limits  signin.LimiterSource
	cur     *signin.SignIn
}

func (s *signInSwitch) update(cfg *routes.OIDCConfig) {
	if cfg == nil {
		if s.cur != nil {
			s.gw.SetSignIn(nil)
			s.cur.Close()
			s.cur = nil
			s.log.Info("family sign-in off: no oidc block; family routes answer 503")
		}
		return
	}
	next, err := signin.New(cfg, signin.Options{
		Table: s.gw.Table, Log: s.log.With("part", "signin"), HTTPClient: s.client, Previous: s.cur,
		Outcome: s.outcome, Limits: s.limits,
	})
	if err != nil {
		if s.cur != nil {
			s.log.Error("family sign-in not updated; the running one stays", "err", err)
		} else {
			s.log.Error("family sign-in unavailable; family routes answer 503", "err", err)
		}
		return
	}
	s.gw.SetSignIn(next)
	if s.cur != nil {
		s.cur.Close()
	}
	s.cur = next
}

func (s *signInSwitch) close() {
	if s.cur != nil {
		s.cur.Close()
	}
}

func newServer(h http.Handler, sc routes.ServerConfig, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: sc.ReadHeaderTimeout,
		IdleTimeout:       sc.IdleTimeout,
		MaxHeaderBytes:    sc.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
