package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLICheckGoodFile(t *testing.T) {
	var out, errb bytes.Buffer
	if code := cli([]string{"check", "-config", "routes.hcl"}, &out, &errb); code != 0 {
		t.Fatalf("check routes.hcl: exit %d\n%s", code, errb.String())
	}
	if !strings.Contains(out.String(), "routes.hcl: ok — 15 routes") || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("summary is not one line naming the routes: %q", out.String())
	}
}

func TestCLICheckBadFileListsEveryError(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	writeFile(t, bad, `domain = "example.com"
route "a" {
  backend = "http://10.0.0.1:80"
  cloudflare {
    host   = "a"
    access = "famly"
  }
}
route "b" {
  backend = "ftp://127.0.0.1:21"
}
`)
	var out, errb bytes.Buffer
	if code := cli([]string{"check", "-config", bad}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{
		bad + ":3:13: error: Backend is not on loopback",
		bad + ":6:14: error: Unknown access level",
		"use one of admin, members, family, app, closed",
		bad + ":10:13: error: Invalid backend",
		"3 errors; nothing changed",
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("diagnostics lack %q:\n%s", want, errb.String())
		}
	}
}

func TestCLIRoutesPrintsMatrix(t *testing.T) {
	code, out, errs := run("routes", "-config", "routes.hcl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"photos.example.com family", "radarr admin", "  /admin ", "cloudflare closed", "preset jellyfin", "  limit "} {
		if !strings.Contains(out, want) {
			t.Errorf("matrix lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = run("routes", "-config", "routes.hcl", "-route", "vaultwarden")
	if code != 0 || strings.Contains(out, "immich") || !strings.Contains(out, "vaultwarden") {
		t.Errorf("routes -route vaultwarden: exit %d\n%s", code, out)
	}
}

func run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = cli(args, &out, &errb)
	return code, out.String(), errb.String()
}

// Help goes to stdout with exit 0, and each command's -h describes that
// command with its own flags only.
func TestCLIHelp(t *testing.T) {
	for _, c := range []struct {
		args    []string
		want    []string
		notWant []string
	}{
		{[]string{"-h"}, []string{"Commands:", "  check ", "  tokens ", "Exit status: 0 done; 1", "2 the command line is wrong"}, []string{"-log-format"}},
		{[]string{"help"}, []string{"Commands:"}, nil},
		{[]string{"--help"}, []string{"Commands:"}, nil},
		{[]string{"check", "-h"}, []string{"usage: gatehouse check [-config FILE]", "acknowledge", "-config"}, []string{"-log-format", "-route"}},
		{[]string{"help", "check"}, []string{"usage: gatehouse check [-config FILE]", "-config"}, []string{"-log-format"}},
		{[]string{"routes", "-h"}, []string{"usage: gatehouse routes", "-route NAME", "-v"}, []string{"-log-format"}},
		{[]string{"run", "-h"}, []string{"usage: gatehouse [run]", "-log-format", "-access-log", "SIGHUP"}, []string{"-route"}},
		{[]string{"login", "-h"}, []string{"usage: gatehouse login", "control server does not answer"}, []string{"-log-format"}},
		{[]string{"tokens", "-h"}, []string{"usage: gatehouse tokens", "revoke", "-user"}, []string{"-log-format"}},
		{[]string{"tokens", "help"}, []string{"usage: gatehouse tokens"}, nil},
		{[]string{"help", "tokens"}, []string{"usage: gatehouse tokens"}, nil},
		{[]string{"help", "version"}, []string{"usage: gatehouse version", "Print the version."}, []string{"-config"}},
		{[]string{"version"}, []string{"gatehouse "}, nil},
	} {
		code, out, errs := run(c.args...)
		if code != 0 || errs != "" {
			t.Errorf("%q: exit %d, stderr %q", c.args, code, errs)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%q: help lacks %q:\n%s", c.args, w, out)
			}
		}
		for _, w := range c.notWant {
			if strings.Contains(out, w) {
				t.Errorf("%q: help names %q, which is another command's:\n%s", c.args, w, out)
			}
		}
	}
}

// Exit statuses are the same for every command: 0 done, 1 the command
// failed, 2 the command line is wrong (said on stderr, with the usage).
func TestCLIExitCodes(t *testing.T) {
	noTailnet := filepath.Join(t.TempDir(), "routes.hcl")
	writeFile(t, noTailnet, "domain = \"example.com\"\n")
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	writeFile(t, bad, "domain = \"example.com\"\nroute \"a\" {\n  backend = \"ftp://127.0.0.1:21\"\n}\n")
	for _, c := range []struct {
		args []string
		want int
		say  string // on stderr
	}{
		{[]string{"version"}, 0, ""},
		{[]string{"check", "-config", "routes.hcl"}, 0, ""},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"check", "-frob"}, 2, "usage: gatehouse check"},
		{[]string{"check", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"version", "extra"}, 2, "takes no arguments"},
		{[]string{"run", "-log-format", "xml", "-config", noTailnet}, 2, "-log-format"},
		{[]string{"help", "frob"}, 2, `no command "frob"`},
		{[]string{"tokens"}, 2, "say list or revoke"},
		{[]string{"tokens", "list", "extra", "-config", "routes.hcl"}, 2, "takes no arguments"},
		{[]string{"check", "-config", bad}, 1, "1 error; nothing changed"},
		{[]string{"routes", "-config", bad}, 1, "1 error; nothing changed"},
		{[]string{"check", "-config", "no-such-file.hcl"}, 1, "Cannot read route table"},
		{[]string{"routes", "-config", "routes.hcl", "-route", "nope"}, 1, `no route "nope"`},
		{[]string{"login", "-config", noTailnet}, 1, "has no tailnet block"},
		{[]string{"tokens", "list", "-config", noTailnet}, 1, "has no oidc block"},
	} {
		code, _, errs := run(c.args...)
		if code != c.want || !strings.Contains(errs, c.say) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d saying %q", c.args, code, errs, c.want, c.say)
		}
	}
}

// $GATEHOUSE_CONFIG is the default of -config (the NixOS module's command
// sets it); -config still wins.
func TestCLIConfigFromEnvironment(t *testing.T) {
	other := filepath.Join(t.TempDir(), "other.hcl")
	writeFile(t, other, "domain = \"example.org\"\nroute \"only\" {\n  backend = \"http://127.0.0.1:9\"\n  cloudflare {\n    host   = \"only\"\n    access = \"app\"\n  }\n}\n")
	t.Setenv(configEnv, other)
	if code, out, errs := run("routes"); code != 0 || !strings.Contains(out, "only.example.org") {
		t.Errorf("routes with $%s: exit %d\n%s%s", configEnv, code, out, errs)
	}
	if code, out, _ := run("routes", "-config", "routes.hcl"); code != 0 || strings.Contains(out, "only.example.org") {
		t.Errorf("-config did not win over $%s", configEnv)
	}
}

// The shipped table's one warning is printed once, naming every family
// route; a file that acknowledges it checks clean, and says so.
func TestCLICheckWarningsOnce(t *testing.T) {
	code, out, errs := run("check", "-config", "routes.hcl")
	if code != 0 || strings.Count(errs, ": warning: ") != 1 || !strings.Contains(errs, `acknowledge = ["family-without-sign-in"]`) {
		t.Fatalf("check routes.hcl: exit %d, want one warning with how to acknowledge it:\n%s", code, errs)
	}
	for _, r := range []string{"immich", "nextcloud", "jellyfin", "jellyseerr", "audiobookshelf", "navidrome"} {
		if !strings.Contains(errs, `"`+r+`"`) {
			t.Errorf("the warning does not name %s", r)
		}
	}
	if !strings.Contains(out, ", 1 warning\n") {
		t.Errorf("summary: %q", out)
	}
	src, err := os.ReadFile("routes.hcl")
	if err != nil {
		t.Fatal(err)
	}
	acked := filepath.Join(t.TempDir(), "routes.hcl")
	writeFile(t, acked, strings.Replace(string(src), "domain = \"example.com\"", "domain = \"example.com\"\nacknowledge = [\"family-without-sign-in\"]", 1))
	code, out, errs = run("check", "-config", acked)
	if code != 0 || strings.Contains(errs, "warning") || !strings.Contains(out, "0 warnings (and 1 acknowledged)") {
		t.Errorf("check with the warning acknowledged: exit %d\n%s%s", code, out, errs)
	}
}

// Two routes on one host: the error points at the second `host =` line
// (with a caret there) and names the first one's line.
func TestCLICheckDuplicateHostPointsAtHost(t *testing.T) {
	file := filepath.Join(t.TempDir(), "routes.hcl")
	writeFile(t, file, `domain = "example.com"
route "a" {
  backend = "http://127.0.0.1:2283"
  cloudflare {
    access = "app"
    host   = "photos"
  }
}
route "b" {
  backend = "http://127.0.0.1:2284"
  cloudflare {
    access = "app"
    host   = "photos"
  }
}
`)
	code, _, errs := run("check", "-config", file)
	want := file + `:13:5: error: Duplicate host on the cloudflare door: "photos.example.com" is already the cloudflare host of route "a" (line 6)`
	if code != 1 || !strings.Contains(errs, want) || !strings.Contains(errs, "    host   = \"photos\"\n        ^^^^^^^^^^^^^^^^^") {
		t.Errorf("exit %d:\n%s\nwant %q with a caret under the host line", code, errs, want)
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	// Replace the file the way editors do: write aside, rename over.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
