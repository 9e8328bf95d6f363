// Command gatehouse stands at every door of a home server: it routes
// hostnames to services on localhost according to routes.hcl, deciding per
// door who may pass.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"gatehouse/routes"
	"gatehouse/sdnotify"
	"gatehouse/server"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = ""

// Exit statuses, the same for every command (docs/commands.md).
const (
	exitOK     = 0 // done
	exitFailed = 1 // the command ran and failed: a bad routes.hcl, nothing found, a door that would not open
	exitUsage  = 2 // the command line is wrong: unknown command, flag or argument
)

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

// cli runs one command line and returns its exit status.
func cli(args []string, stdout, stderr io.Writer) int {
	name := "run" // a command line that starts with a flag runs the gateway
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	} else if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			return help(args[1:], stdout, stderr) // the overview, not run's flags
		case "-version", "--version":
			name, args = "version", args[1:]
		}
	}
	switch name {
	case "help":
		return help(args, stdout, stderr)
	case "version":
		if len(args) > 0 {
			fmt.Fprintf(stderr, "gatehouse version: takes no arguments\n")
			return exitUsage
		}
		fmt.Fprintln(stdout, "gatehouse", buildVersion())
		return exitOK
	case "tokens":
		return tokensCommand(args, stdout, stderr)
	}
	c, ok := lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "gatehouse: unknown command %q; the commands are %s (gatehouse help)\n", name, commandNames())
		return exitUsage
	}
	fs := newFlagSet(c, stderr)
	run := c.flags(fs)
	if code, ok := parse(fs, c, args, stdout); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gatehouse %s: unexpected argument %q (gatehouse %s -h)\n", c.name, fs.Arg(0), c.name)
		return exitUsage
	}
	return run(fs.Args(), stdout, stderr)
}

// configEnv names the environment variable that, when set, is the default
// of -config: the NixOS module's gatehouse command sets it to the service's
// route table, so `gatehouse routes` on the host reads what the service reads.
const configEnv = "GATEHOUSE_CONFIG"

// configFlag defines -config on fs: the route table file, routes.hcl unless
// $GATEHOUSE_CONFIG names another.
func configFlag(fs *flag.FlagSet) *string {
	def := "routes.hcl"
	if v := os.Getenv(configEnv); v != "" {
		def = v
	}
	return fs.String("config", def, "the route table `file`; $"+configEnv+", when set, is the default")
}

// load reads the route table; a table with errors is reported, with its
// count, and ok is false.
func load(file string, stderr io.Writer) (cfg *routes.Config, ok bool) {
	cfg, f, diags := routes.Load(file)
	if cfg == nil {
		routes.WriteDiagnostics(stderr, diags, f)
		fmt.Fprintf(stderr, "%s: %s; nothing changed\n", file, routes.Count(len(diags.Errs()), "error"))
		return nil, false
	}
	return cfg, true
}

func runFlags(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) int {
	config := configFlag(fs)
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	accessLog := fs.Bool("access-log", true, "log one line per request")
	accessLogFile := fs.String("access-log-file", "", "also write every request to `file` in the Combined Log Format (fail2ban, CrowdSec, GoAccess); SIGUSR1 reopens it")
	return func(_ []string, _, stderr io.Writer) int {
		log, err := newLogger(stderr, *logFormat, *logLevel)
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse run:", err)
			return exitUsage
		}
		cfg, ok := load(*config, stderr)
		if !ok {
			return exitFailed
		}
		return serve(*config, cfg, log, *accessLog, *accessLogFile)
	}
}

// serve runs the gateway until SIGTERM or SIGINT; SIGHUP reloads, SIGUSR1
// reopens the access log file.
func serve(configPath string, cfg *routes.Config, log *slog.Logger, accessLog bool, accessLogFile string) int {
	for _, d := range cfg.Warnings {
		log.Warn(routes.FormatDiagnostic(d))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reload, stopHUP := signalRequests(syscall.SIGHUP)
	defer stopHUP()
	reopen, stopUSR1 := signalRequests(syscall.SIGUSR1)
	defer stopUSR1()
	srv, err := server.New(server.Options{
		ConfigPath: configPath, Config: cfg, Log: log, AccessLog: accessLog, Reload: reload, Watch: true,
		AccessLogFile: accessLogFile, ReopenLog: reopen,
		Notify: sdnotify.FromEnv(),
	})
	if err == nil {
		err = srv.Run(ctx)
	}
	if err != nil {
		log.Error("gatehouse stopped", "err", err)
		return exitFailed
	}
	return exitOK
}

// signalRequests turns each sig into a request on the returned channel;
// requests that arrive while one waits are one request (a reload or a
// reopen does the whole job once).
func signalRequests(sig os.Signal) (<-chan struct{}, func()) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, sig)
	req := make(chan struct{}, 1)
	go func() {
		for range c {
			select {
			case req <- struct{}{}:
			default:
			}
		}
	}()
	return req, func() { signal.Stop(c) }
}

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
