package main

// The commands of the CLI: their table, help texts and flags. main.go runs
// them; `run` is served there.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"gatehouse/lan"
	"gatehouse/routes"
	"gatehouse/server"
	"gatehouse/tailnet"
)

// A command is one of gatehouse's subcommands.
type command struct {
	name     string
	synopsis string // the usage line
	summary  string // one line for the overview
	about    string // what `gatehouse NAME -h` says above the flags
	// flags defines the command's flags on fs (every command but version
	// and help has -config) and returns what runs it.
	flags func(fs *flag.FlagSet) func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{name: "run", synopsis: "gatehouse [run] [-config FILE] [-log-format text|json] [-log-level LEVEL] [-access-log=false] [-access-log-file FILE]",
			summary: "serve every door (the default command)",
			about: `Opens the Cloudflare door (the loopback listener cloudflared forwards to),
starts the tailnet nodes and the metrics listener, and serves until SIGTERM
or SIGINT, then lets running requests finish (server.shutdown_timeout).
The route table is re-read when the file changes and on SIGHUP; a file
with errors changes nothing.`,
			flags: runFlags},
		{name: "check", synopsis: "gatehouse check [-config FILE]",
			summary: "validate the route table: every problem, with file:line:col",
			about: `Reads the route table as a running gateway would and prints every error and
warning with file:line:col, the source line and what to do, then a summary
on stdout. Exits 1 when the file has errors. Warnings do not fail; once you
mean one, name it in the file's acknowledge list to silence it.`,
			flags: checkFlags},
		{name: "routes", synopsis: "gatehouse routes [-config FILE] [-v] [-route NAME]",
			summary: "print who can reach what, through which door, with the limits",
			about: `Prints the accessibility matrix the file encodes: per route its backend, its
host and access level on each door, the limit in force, and its path
rules. A preset is one line (how many paths it opens or closes) unless -v
is given; -route NAME shows one route with every path.`,
			flags: routesFlags},
		{name: "dns", synopsis: "gatehouse dns [-config FILE]",
			summary: "print the split-DNS records that lead the LAN door's names home",
			about: `Prints, for every host of the LAN door, the A/AAAA record a home resolver
needs so the public name reaches the LAN door at home: as a table, then as
dnsmasq/Pi-hole, Unbound and AdGuard Home lines (docs/lan.md).`,
			flags: dnsFlags},
		{name: "login", synopsis: "gatehouse login [-config FILE]",
			summary: "join the tailnet without an auth key (prints the login URLs)",
			about: `Joins every tailnet node the table needs that has not joined yet, one at a
time, printing the URL to open in a browser to approve it. Nodes with an
auth key (tailnet.auth_key_file) join on their own and need none of this.
Says at once when the control server does not answer.`,
			flags: loginFlags},
		{name: "tokens", synopsis: "gatehouse tokens list|revoke [-config FILE] [ID... | -user EMAIL]",
			summary: "list or revoke family device tokens (phone and TV apps)",
			about:   tokensAbout,
			flags:   nil, // tokens parses its own subcommands (tokens_cmd.go)
		},
		{name: "version", synopsis: "gatehouse version", summary: "print the version"},
		{name: "help", synopsis: "gatehouse help [COMMAND]", summary: "this text, or what one command does (also: gatehouse COMMAND -h)"},
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func commandNames() string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return strings.Join(names, ", ")
}

// newFlagSet makes a command's flag set. The flag package's own messages
// (an unknown flag, a bad value) go to stderr; its Usage is silent, since
// it runs for -h too, which parse answers on stdout.
func newFlagSet(c command, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("gatehouse "+c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	return fs
}

// parse parses a command's flags. Help asked for is written to stdout; a
// wrong flag gets the usage line on stderr. ok is false when the command
// is not to run, with the status to exit with.
func parse(fs *flag.FlagSet, c command, args []string, stdout io.Writer) (code int, ok bool) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		writeHelp(stdout, c, fs)
		return exitOK, false
	case err != nil: // the flag package said what was wrong
		usageLine(fs.Output(), c)
		return exitUsage, false
	}
	return exitOK, true
}

// usageLine points at a command's help after a wrong command line.
func usageLine(w io.Writer, c command) {
	fmt.Fprintf(w, "usage: %s (gatehouse %s -h for more)\n", c.synopsis, c.name)
}

const overview = `gatehouse — one gateway for every door of a home server.

It reads a route table (routes.hcl) and forwards each request to a service
on this machine, or refuses it, depending on the door it came through: the
loopback listener cloudflared forwards to, or the tailnet.

Commands:
`

const overviewTail = `
Every command but version reads the route table: -config FILE, by default
$GATEHOUSE_CONFIG when set (the NixOS module's gatehouse command sets it to
the service's table), else ./routes.hcl.

Exit status: 0 done; 1 the command failed (the file has errors, nothing was
found, a door would not open); 2 the command line is wrong.
`

// help writes the overview, or one command's help, to stdout.
func help(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stdout, overview)
		for _, c := range commands() {
			fmt.Fprintf(stdout, "  %-8s %s\n", c.name, c.summary)
		}
		fmt.Fprint(stdout, overviewTail)
		return exitOK
	}
	c, ok := lookup(args[0])
	if !ok || len(args) > 1 {
		fmt.Fprintf(stderr, "gatehouse help: no command %q; the commands are %s\n", strings.Join(args, " "), commandNames())
		return exitUsage
	}
	if c.name == "tokens" {
		return tokensCommand([]string{"-h"}, stdout, stderr)
	}
	var fs *flag.FlagSet
	if c.flags != nil {
		fs = newFlagSet(c, stderr)
		c.flags(fs)
	}
	writeHelp(stdout, c, fs)
	return exitOK
}

// writeHelp is a command's help: its usage line, what it does, its flags.
func writeHelp(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s\n\n", c.synopsis)
	about := c.about
	if about == "" {
		about = strings.ToUpper(c.summary[:1]) + c.summary[1:] + "."
	}
	fmt.Fprintln(w, about)
	if fs == nil {
		return
	}
	fmt.Fprintln(w, "\nFlags:")
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

func checkFlags(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) int {
	config := configFlag(fs)
	return func(_ []string, stdout, stderr io.Writer) int {
		cfg, f, diags := routes.Load(*config)
		routes.WriteDiagnostics(stderr, diags, f)
		if cfg == nil {
			fmt.Fprintf(stderr, "%s: %s; nothing changed\n", *config, routes.Count(len(diags.Errs()), "error"))
			return exitFailed
		}
		fmt.Fprintln(stdout, routes.Summary(cfg))
		if cfg.LAN != nil {
			// Beside the summary, like the file's own warnings.
			for _, line := range lan.Check(cfg.LAN) {
				fmt.Fprintln(stderr, line)
			}
		}
		fmt.Fprintf(stderr, "note: a running gateway takes a change at once, except to: %s (those apply after restart).\n",
			strings.Join(server.RestartOnly(), ", "))
		return exitOK
	}
}

func routesFlags(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) int {
	config := configFlag(fs)
	verbose := fs.Bool("v", false, "list every path of every preset")
	route := fs.String("route", "", "show only the route `NAME`, with every path")
	return func(_ []string, stdout, stderr io.Writer) int {
		cfg, ok := load(*config, stderr)
		if !ok {
			return exitFailed
		}
		if err := routes.WriteMatrix(stdout, cfg, routes.MatrixOptions{Verbose: *verbose, Route: *route}); err != nil {
			fmt.Fprintln(stderr, "gatehouse routes:", err)
			return exitFailed
		}
		return exitOK
	}
}

func dnsFlags(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) int {
	config := configFlag(fs)
	return func(_ []string, stdout, stderr io.Writer) int {
		cfg, ok := load(*config, stderr)
		if !ok {
			return exitFailed
		}
		if err := routes.WriteSplitDNS(stdout, cfg); err != nil {
			fmt.Fprintln(stderr, "gatehouse dns:", err)
			return exitFailed
		}
		return exitOK
	}
}

func loginFlags(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) int {
	config := configFlag(fs)
	return func(_ []string, stdout, stderr io.Writer) int {
		cfg, ok := load(*config, stderr)
		if !ok {
			return exitFailed
		}
		if cfg.Tailnet == nil {
			fmt.Fprintf(stderr, "gatehouse login: %s has no tailnet block\n", *config)
			return exitFailed
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := tailnet.Login(ctx, cfg.Tailnet, routes.Compile(cfg), stdout); err != nil {
			fmt.Fprintln(stderr, "gatehouse login:", err)
			return exitFailed
		}
		return exitOK
	}
}
