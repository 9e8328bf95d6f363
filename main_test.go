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
	var out, errb bytes.Buffer
	if code := cli([]string{"routes", "-config", "routes.hcl"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"photos.example.com family", "radarr.<tailnet> admin", "path /admin", "closed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("matrix lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCLIVersionAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := cli([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "gatehouse ") {
		t.Errorf("version: exit %d, %q", code, out.String())
	}
	out.Reset()
	errb.Reset()
	if code := cli([]string{"-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "gatehouse check") {
		t.Errorf("-h: exit %d, %q", code, errb.String())
	}
	if code := cli([]string{"frobnicate"}, &out, &errb); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
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
