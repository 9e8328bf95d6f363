// Command gatehouse stands at every door of a home server: it routes
// hostnames to services on localhost according to routes.hcl, deciding per
// door who may pass.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"tailscale.com/envknob"
	"tailscale.com/logtail"
	"tailscale.com/tsnet"

	"gatehouse/proxy"
	"gatehouse/routes"
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
		if !cfg.Tailnet.LogUpload {
			envknob.SetNoLogsNoSupport()
			logtail.Disable()
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
}

// serve runs the doors until ctx ends, then drains them.
func serve(ctx context.Context, o serveOptions) error {
	cfg := o.config
	gw := proxy.New(routes.Compile(cfg), proxy.Options{Logger: o.log, AccessLog: o.accessLog})
	defer gw.Close()

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
	go func() { serveErr <- srv.Serve(ln) }()
	o.log.Info("cloudflare door open", "listen", ln.Addr().String(), "routes", len(cfg.Routes))
	if o.ready != nil {
		o.ready(ln.Addr())
	}

	// The tailnet door starts in the background: a tailnet that cannot
	// start never keeps the Cloudflare door from serving.
	var nodes *tailnet.Nodes
	if tc := cfg.Tailnet; tc != nil {
		if ok, why := tailnet.Enabled(tc); !ok {
			o.log.Warn(why)
		} else {
			if !tc.LogUpload {
				// Nothing goes to Tailscale's log service unless asked.
				envknob.SetNoLogsNoSupport()
				logtail.Disable()
			}
			nodes = tailnet.Start(tc, gw.Table(), tailnet.Options{
				Handlers: gw, Log: o.log, Server: cfg.Server, Started: o.tailnetStarted,
			})
			defer nodes.Close()
			if o.nodes != nil {
				o.nodes(nodes)
			}
		}
	}

	var mu sync.Mutex
	doReload := func(why string) {
		mu.Lock()
		defer mu.Unlock()
		t, err := reloadTable(gw, o.configPath, why, o.log)
		if err == nil && nodes != nil {
			nodes.Sync(t)
		}
		if o.reloaded != nil {
			o.reloaded(err)
		}
	}
	watchCtx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	if o.watch {
		go func() {
			err := routes.Watch(watchCtx, o.configPath, 300*time.Millisecond, func() { doReload("file changed") })
			if err != nil {
				o.log.Warn("not watching the route table; reload with SIGHUP", "err", err)
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

func newServer(h http.Handler, sc routes.ServerConfig, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: sc.ReadHeaderTimeout,
		IdleTimeout:       sc.IdleTimeout,
		MaxHeaderBytes:    sc.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
