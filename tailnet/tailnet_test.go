package tailnet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tailscale.com/envknob"

	"gatehouse/routes"
)

// writeState leaves a saved tailscaled state for node name, as a node that
// joined before would.
func writeState(t *testing.T, cfg *routes.TailnetConfig, name string) {
	t.Helper()
	if err := os.MkdirAll(nodeDir(cfg, name), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(nodeDir(cfg, name), "tailscaled.state"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The tailnet door starts without a person only with a key, an OAuth
// client secret or saved state; otherwise it stays off and says how to
// turn it on.
func TestEnabled(t *testing.T) {
	t.Setenv("TS_AUTHKEY", "")
	t.Setenv("TS_AUTH_KEY", "")
	if ok, why := Enabled(nil); ok || !strings.Contains(why, "no tailnet block") {
		t.Errorf("no tailnet block: %v %q", ok, why)
	}
	cfg := &routes.TailnetConfig{Hostname: "gatehouse", StateDir: t.TempDir()}
	if ok, why := Enabled(cfg); ok || !strings.Contains(why, "auth_key_file") || !strings.Contains(why, "gatehouse login") {
		t.Errorf("nothing to join with: %v %q", ok, why)
	}
	for _, c := range []struct {
		name string
		set  func(*routes.TailnetConfig)
	}{
		{"auth key file", func(c *routes.TailnetConfig) { c.AuthKeyFile = "/run/secrets/ts" }},
		{"OAuth client secret", func(c *routes.TailnetConfig) { c.ClientSecretFile = "/run/secrets/oauth" }},
		{"TS_AUTHKEY", func(*routes.TailnetConfig) { t.Setenv("TS_AUTHKEY", "tskey-x") }},
		{"TS_AUTH_KEY", func(*routes.TailnetConfig) { t.Setenv("TS_AUTHKEY", ""); t.Setenv("TS_AUTH_KEY", "tskey-x") }},
	} {
		c2 := *cfg
		c.set(&c2)
		if ok, why := Enabled(&c2); !ok {
			t.Errorf("%s: door off: %q", c.name, why)
		}
	}
	t.Setenv("TS_AUTH_KEY", "")
	// Another node's state does not count: the shared node joins itself.
	writeState(t, cfg, "radarr")
	if ok, _ := Enabled(cfg); ok {
		t.Error("a per-route node's state turned the door on for the shared node")
	}
	writeState(t, cfg, "gatehouse")
	if ok, why := Enabled(cfg); !ok {
		t.Errorf("saved state: door off: %q", why)
	}
}

// Every node keeps its state in a directory of its own under state_dir,
// so no two nodes share (and corrupt) one.
func TestNodeDirsAreSeparate(t *testing.T) {
	cfg := &routes.TailnetConfig{Hostname: "gatehouse", StateDir: t.TempDir()}
	a, b := nodeDir(cfg, "gatehouse"), nodeDir(cfg, "radarr")
	if a == b || filepath.Dir(a) != cfg.StateDir || filepath.Dir(b) != cfg.StateDir {
		t.Fatalf("node directories %q and %q under %q", a, b, cfg.StateDir)
	}
	if joined(cfg, "radarr") {
		t.Fatal("joined before any state was saved")
	}
	writeState(t, cfg, "radarr")
	if !joined(cfg, "radarr") || joined(cfg, "gatehouse") {
		t.Fatalf("joined: radarr %v, gatehouse %v (only radarr has state)", joined(cfg, "radarr"), joined(cfg, "gatehouse"))
	}
}

// wantedFor is Wanted for the table src.
func wantedFor(t *testing.T, src string) map[string]bool {
	t.Helper()
	cfg, _, diags := routes.Parse([]byte(src), "t.hcl")
	if cfg == nil {
		t.Fatal(diags)
	}
	return Wanted(cfg.Tailnet, routes.Compile(cfg))
}

func TestWanted(t *testing.T) {
	got := wantedFor(t, `domain = "example.com"
tailnet {
  hostname = "gatehouse"
}
route "radarr" {
  backend = "http://127.0.0.1:7878"
  tailnet {
    access = "admin"
  }
}
route "sonarr" {
  backend = "http://127.0.0.1:8989"
  tailnet {
    access = "admin"
    host   = "tv-shows"
  }
}
route "jellyseerr" {
  backend = "http://127.0.0.1:5055"
  tailnet {
    access = "admin"
    node   = false
  }
}
route "photos" {
  backend = "http://127.0.0.1:2283"
  cloudflare {
    host   = "photos"
    access = "app"
  }
}
`)
	want := map[string]bool{"gatehouse": false, "radarr": true, "tv-shows": true}
	if len(got) != len(want) {
		t.Fatalf("Wanted = %v, want %v", got, want)
	}
	for name, perRoute := range want {
		if v, ok := got[name]; !ok || v != perRoute {
			t.Errorf("Wanted = %v, want %v", got, want)
		}
	}
}

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if s, err := readSecret(write("key", "tskey-auth-abc \r\n\n")); err != nil || s != "tskey-auth-abc" {
		t.Errorf("readSecret = %q, %v; want the key without its line end", s, err)
	}
	for _, content := range []string{"", "\n", " \r\n"} {
		if _, err := readSecret(write("empty", content)); err == nil || !strings.Contains(err.Error(), "empty") {
			t.Errorf("readSecret of %q: %v, want an error naming an empty file", content, err)
		}
	}
	if _, err := readSecret(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing secret file gave a secret")
	}
}

// tailscaled's logs go to Tailscale's log service only when the admin
// asked for it (tailnet.log_upload).
func TestLogUploadSwitch(t *testing.T) {
	const knob = "TS_NO_LOGS_NO_SUPPORT"
	envknob.SetenvForTest(t, knob, "")
	quietLogs(&routes.TailnetConfig{LogUpload: true})
	if envknob.NoLogsNoSupport() {
		t.Fatal("log_upload = true turned log upload off")
	}
	quietLogs(&routes.TailnetConfig{})
	if !envknob.NoLogsNoSupport() {
		t.Fatal("log_upload unset left log upload on")
	}
}

// A route closed on the tailnet gets no node of its own, unless a path
// rule opens something there; nodes of other routes are untouched.
func TestWantedSkipsRoutesClosedOnTheTailnet(t *testing.T) {
	got := wantedFor(t, `domain = "example.com"
tailnet {
  hostname = "gatehouse"
}
route "radarr" {
  backend = "http://127.0.0.1:7878"
  tailnet {
    access = "admin"
  }
}
route "vault" {
  backend = "http://127.0.0.1:8000"
  tailnet {
    access = "closed"
  }
  cloudflare {
    host   = "passwords"
    access = "app"
  }
}
route "opened-below" {
  backend = "http://127.0.0.1:9000"
  tailnet {
    access = "closed"
  }
  path "/status" {
    tailnet = "members"
  }
}
`)
	if _, ok := got["vault"]; ok {
		t.Errorf("a route closed on the tailnet gets a node: %v", got)
	}
	for _, name := range []string{"gatehouse", "radarr", "opened-below"} {
		if _, ok := got[name]; !ok {
			t.Errorf("Wanted = %v, lacks %s", got, name)
		}
	}
}

// The plain-HTTP notice fits the control server: Tailscale's has a switch
// for HTTPS certificates, Headscale issues none.
func TestPlainHTTPNotice(t *testing.T) {
	for _, u := range []string{"", "https://controlplane.tailscale.com", "https://login.tailscale.com/"} {
		if n := plainHTTPNotice(u); !strings.Contains(n, "Tailscale admin console") || strings.Contains(n, "Headscale") {
			t.Errorf("control %q: %q", u, n)
		}
	}
	n := plainHTTPNotice("https://headscale.example.com")
	if strings.Contains(n, "admin console") || !strings.Contains(n, "Headscale issues none") || !strings.Contains(n, "https://headscale.example.com") {
		t.Errorf("Headscale: %q", n)
	}
	if isTailscaleControl("https://tailscale.com.evil.example") {
		t.Error("a look-alike host counts as Tailscale's control server")
	}
}

// State left by a node whose route is gone is found; the nodes the table
// still names, and directories that hold no node state, are not.
func TestLeftovers(t *testing.T) {
	cfg := &routes.TailnetConfig{Hostname: "gatehouse", StateDir: t.TempDir()}
	for _, name := range []string{"gatehouse", "radarr", "old-route"} {
		writeState(t, cfg, name)
	}
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, "not-a-node"), 0o700); err != nil {
		t.Fatal(err)
	}
	got := leftovers(cfg, map[string]bool{"gatehouse": false, "radarr": true})
	if len(got) != 1 || got[0] != "old-route" {
		t.Fatalf("leftovers = %v, want [old-route]", got)
	}
}
