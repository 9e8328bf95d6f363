package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"gatehouse/devices"
	"gatehouse/routes"
)

const tokensUsage = `gatehouse tokens — family device tokens (phone and TV apps).

Usage:
  gatehouse tokens list [-config routes.hcl]
  gatehouse tokens revoke [-config routes.hcl] ID...
  gatehouse tokens revoke [-config routes.hcl] -user EMAIL-OR-SUBJECT

Tokens are kept hashed beside the oidc cookie key file (devices.json). A
running gateway sees a revocation on the next request that uses the token.

Flags:
`

// tokensCommand lists and revokes device tokens in the file the running
// gateway uses; family members manage their own at /.gatehouse/devices.
func tokensCommand(args []string, stdout, stderr io.Writer) int {
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("gatehouse tokens "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, tokensUsage)
		fs.PrintDefaults()
	}
	config := configFlag(fs)
	user := fs.String("user", "", "revoke: every token of this owner (email or subject)")
	switch sub {
	case "list", "revoke":
	case "", "help", "-h", "-help", "--help":
		fs.Usage()
		if sub == "" {
			return 2
		}
		return 0
	default:
		fmt.Fprintf(stderr, "gatehouse tokens: unknown command %q\n\n", sub)
		fs.Usage()
		return 2
	}
	// Flags may come before or after the token ids.
	var ids []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		ids = append(ids, fs.Arg(0))
		args = fs.Args()[1:]
	}
	cfg, file, diags := routes.Load(*config)
	if cfg == nil {
		routes.WriteDiagnostics(stderr, diags, file)
		return 1
	}
	if cfg.OIDC == nil {
		fmt.Fprintf(stderr, "gatehouse tokens: %s has no oidc block, so there are no device tokens\n", *config)
		return 1
	}
	store, err := devices.Open(cfg.OIDC.DeviceTokenFile, nil)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse tokens:", err)
		return 1
	}
	switch sub {
	case "list":
		if len(ids) > 0 || *user != "" {
			fmt.Fprintln(stderr, "gatehouse tokens list: takes no arguments")
			return 2
		}
		list, err := store.List(nil)
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse tokens:", err)
			return 1
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
		return 0
	default: // revoke
		if (len(ids) == 0) == (*user == "") {
			fmt.Fprintln(stderr, "gatehouse tokens revoke: give token ids or -user, not both")
			return 2
		}
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
			return 1
		}
		for _, t := range gone {
			fmt.Fprintf(stdout, "revoked %s (%s of %s)\n", t.ID, t.Name, t.Email)
		}
		if len(ids) > len(gone) {
			fmt.Fprintf(stderr, "gatehouse tokens: %d of the ids were not found\n", len(ids)-len(gone))
			return 1
		}
		return 0
	}
}
