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
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"gatehouse/lan"
	"gatehouse/routes"
	"gatehouse/sdnotify"
	"gatehouse/server"
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
  gatehouse dns [-config routes.hcl]     print the split-DNS records that lead the LAN door's names home
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
	case "run", "check", "routes", "login", "dns":
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
		if cfg.LAN != nil {
			// Beside the summary, like the file's own warnings.
			for _, line := range lan.Check(cfg.LAN) {
				fmt.Fprintln(stderr, line)
			}
		}
		fmt.Fprintf(stderr, "note: a running gateway takes a change at once, except to: %s (those apply after restart).\n",
			strings.Join(server.RestartOnly(), ", "))
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
	case "dns":
		if err := routes.WriteSplitDNS(stdout, cfg); err != nil {
			fmt.Fprintln(stderr, "gatehouse dns:", err)
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
	srv, err := server.New(server.Options{
		ConfigPath: *config, Config: cfg, Log: log, AccessLog: *accessLog, Reload: reload, Watch: true,
		Notify: sdnotify.FromEnv(),
	})
	if err == nil {
		err = srv.Run(ctx)
	}
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
