package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"gatehouse/devices"
)

const tokensAbout = `Family device tokens, what phone and TV apps sign in with:
  gatehouse tokens list [-config FILE]
  gatehouse tokens revoke [-config FILE] ID...
  gatehouse tokens revoke [-config FILE] -user EMAIL-OR-SUBJECT

Tokens are kept hashed beside the oidc cookie key file (devices.json). A
running gateway sees a revocation on the next request that uses the token.
Family members manage their own at /.gatehouse/devices.`

// tokensCommand lists and revokes device tokens in the file the running
// gateway uses; family members manage their own at /.gatehouse/devices.
func tokensCommand(args []string, stdout, stderr io.Writer) int {
	c, _ := lookup("tokens")
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fs := newFlagSet(c, stderr)
	config := configFlag(fs)
	user := fs.String("user", "", "revoke: every token of this owner (email or subject)")
	switch sub {
	case "list", "revoke":
	case "help":
		writeHelp(stdout, c, fs)
		return exitOK
	case "":
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			writeHelp(stdout, c, fs)
			return exitOK
		}
		fmt.Fprintf(stderr, "gatehouse tokens: say list or revoke\n")
		usageLine(stderr, c)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "gatehouse tokens: unknown command %q; say list or revoke\n", sub)
		usageLine(stderr, c)
		return exitUsage
	}
	// Flags may come before or after the token ids.
	var ids []string
	for {
		if code, ok := parse(fs, c, args, stdout); !ok {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		ids = append(ids, fs.Arg(0))
		args = fs.Args()[1:]
	}
	// The command line first: a wrong one is said before any file is read.
	switch {
	case sub == "list" && (len(ids) > 0 || *user != ""):
		fmt.Fprintln(stderr, "gatehouse tokens list: takes no arguments")
		return exitUsage
	case sub == "revoke" && (len(ids) == 0) == (*user == ""):
		fmt.Fprintln(stderr, "gatehouse tokens revoke: give token ids or -user, not both")
		return exitUsage
	}
	cfg, ok := load(*config, stderr)
	if !ok {
		return exitFailed
	}
	if cfg.OIDC == nil {
		fmt.Fprintf(stderr, "gatehouse tokens: %s has no oidc block, so there are no device tokens\n", *config)
		return exitFailed
	}
	store, err := devices.Open(cfg.OIDC.DeviceTokenFile, nil)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse tokens:", err)
		return exitFailed
	}
	switch sub {
	case "list":
		list, err := store.List(nil)
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse tokens:", err)
			return exitFailed
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tDEVICE\tOWNER\tGROUPS\tCREATED")
		for _, t := range list {
			owner := t.Email
			if owner == "" {
				owner = t.Subject
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, owner, strings.Join(t.Groups, ","), t.Created.Format("2006-01-02 15:04"))
		}
		_ = tw.Flush()
		return exitOK
	default: // revoke
		gone, err := store.Revoke(func(t devices.Token) bool {
			if *user != "" {
				return strings.EqualFold(t.Email, *user) || t.Subject == *user
			}
			for _, id := range ids {
				if t.ID == id {
					return true
				}
			}
			return false
		})
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse tokens:", err)
			return exitFailed
		}
		for _, t := range gone {
			fmt.Fprintf(stdout, "revoked %s (%s of %s)\n", t.ID, t.Name, t.Email)
		}
		switch {
		case len(ids) > len(gone):
			fmt.Fprintf(stderr, "gatehouse tokens: %d of the ids %s not found\n", len(ids)-len(gone), map[bool]string{true: "was", false: "were"}[len(ids)-len(gone) == 1])
			return exitFailed
		case *user != "" && len(gone) == 0:
			fmt.Fprintf(stderr, "gatehouse tokens: %s has no device tokens\n", *user)
			return exitFailed
		}
		return exitOK
	}
}
