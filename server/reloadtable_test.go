package server

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"gatehouse/routes"
)

// syncLog collects a server's log for the test to read.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// reloadBase sets every setting of the reload table; each case of
// TestReloadTable changes one of them.
const reloadBase = `domain = "example.com"
cloudflare {
  listen          = "127.0.0.1:1"
  trusted_proxies = ["192.0.2.1/32"]
}
tailnet {
  hostname         = "gatehouse"
  state_dir        = "state"
  control_url      = "http://127.0.0.1:1"
  admins           = ["admin@example.com"]
  admin_capability = "example.com/cap/gatehouse"
  ephemeral        = false
  tags             = ["tag:gatehouse"]
  log_upload       = false
  verbose          = false
}
metrics {
  listen = "127.0.0.1:2"
}
lan {
  listen          = ["127.0.0.1:6"]
  redirect_listen = ["127.0.0.1:7"]
  networks        = ["127.0.0.0/8"]
  state_dir       = "lanstate"
  acme_ca         = "https://127.0.0.1:1/directory"
  acme_email      = "admin@example.com"
  dns_token_file  = "key"
  certificates    = "wildcard"
}
limit {
  rate        = "1000/s"
  burst       = 1000
  max_clients = 1000
}
server {
  read_header_timeout   = "10s"
  idle_timeout          = "120s"
  max_header_bytes      = "8KiB"
  stall_timeout         = "60s"
  upstream_idle_timeout = "4s"
  response_timeout      = "2m"
  shutdown_timeout      = "30s"
}
route "a" {
  backend = "BACKEND"
  cloudflare {
    host   = "a"
    access = "app"
  }
}
route "slow" {
  backend = "SILENT"
  cloudflare {
    host   = "slow"
    access = "app"
  }
}
`

// reloadCase changes one setting of reloadBase and checks that the change
// took effect (Now) or did not (AtRestart), beyond what the log says.
type reloadCase struct {
	edit   func(string) string
	effect func(t *testing.T, g *testServer)
}

// alsoChanged are settings that change with another one's case: the domain
// is part of every route's host, and the oidc case adds a family route.
var alsoChanged = map[string][]string{"domain": {"route"}, "oidc": {"route"}}

func replace(old, new string) func(string) string {
	return func(s string) string {
		if !strings.Contains(s, old) {
			panic(fmt.Sprintf("reloadBase has no %q", old))
		}
		return strings.Replace(s, old, new, 1)
	}
}

// TestReloadTable changes every setting of the reload table in a running
// gateway, one at a time, and checks that the reload logs it by name as
// applied or as waiting for a restart, and that it really did apply, or
// really did not.
func TestReloadTable(t *testing.T) {
	backend := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "a %s", r.Header.Get("X-Real-Ip"))
	}))
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c) }() // takes requests, never answers
		}
	}()
	base := strings.NewReplacer("BACKEND", backend, "SILENT", "http://"+silent.Addr().String()).Replace(reloadBase)
	c := &http.Client{}
	cases := map[string]reloadCase{
		"domain": {replace(`domain = "example.com"`, `domain = "example.org"`), func(t *testing.T, g *testServer) {
			if code, _ := get(t, c, g.addr, "a.example.org", "/"); code != 200 {
				t.Errorf("a.example.org after the change: %d", code)
			}
		}},
		"route": {func(s string) string { return s + appRoute("b", backend) }, func(t *testing.T, g *testServer) {
			if code, _ := get(t, c, g.addr, "b.example.com", "/"); code != 200 {
				t.Errorf("new route: %d", code)
			}
		}},
		"cloudflare.listen": {replace(`listen          = "127.0.0.1:1"`, `listen          = "127.0.0.1:3"`), func(t *testing.T, g *testServer) {
			if code, _ := get(t, c, g.addr, "a.example.com", "/"); code != 200 {
				t.Errorf("the running door stopped answering: %d", code)
			}
		}},
		"cloudflare.trusted_proxies": {replace(`["192.0.2.1/32"]`, `["127.0.0.1/32"]`), func(t *testing.T, g *testServer) {
			req, _ := http.NewRequest("GET", "http://"+g.addr+"/", nil)
			req.Host = "a.example.com"
			req.Header.Set("CF-Connecting-IP", "198.51.100.7")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "a 198.51.100.7" {
				t.Errorf("CF-Connecting-IP from a newly trusted proxy not believed: %q", body)
			}
		}},
		"tailnet.admins":           {replace(`["admin@example.com"]`, `["other@example.com"]`), inForce("tailnet.admins")},
		"tailnet.admin_capability": {replace(`"example.com/cap/gatehouse"`, `"example.com/cap/other"`), inForce("tailnet.admin_capability")},
		"tailnet": {func(s string) string {
			i, j := strings.Index(s, "tailnet {"), strings.Index(s, "metrics {")
			return s[:i] + s[j:]
		}, nil},
		"tailnet.hostname":           {replace(`hostname         = "gatehouse"`, `hostname         = "gate"`), nil},
		"tailnet.state_dir":          {replace(`state_dir        = "state"`, `state_dir        = "state2"`), nil},
		"tailnet.auth_key_file":      {replace(`state_dir        = "state"`, "state_dir        = \"state\"\n  auth_key_file = \"key\""), nil},
		"tailnet.client_secret_file": {replace(`state_dir        = "state"`, "state_dir        = \"state\"\n  client_secret_file = \"oauth\""), nil},
		"tailnet.control_url":        {replace(`"http://127.0.0.1:1"`, `"http://127.0.0.1:4"`), nil},
		"tailnet.ephemeral":          {replace(`ephemeral        = false`, `ephemeral        = true`), nil},
		"tailnet.tags":               {replace(`["tag:gatehouse"]`, `["tag:gate"]`), nil},
		"tailnet.log_upload":         {replace(`log_upload       = false`, `log_upload       = true`), nil},
		"tailnet.verbose":            {replace(`verbose          = false`, `verbose          = true`), nil},
		"lan": {func(s string) string {
			i, j := strings.Index(s, "lan {"), strings.Index(s, "limit {")
			return s[:i] + s[j:]
		}, nil},
		"lan.listen":          {replace(`["127.0.0.1:6"]`, `["127.0.0.1:8"]`), nil},
		"lan.redirect_listen": {replace(`["127.0.0.1:7"]`, `["127.0.0.1:9"]`), nil},
		"lan.networks":        {replace(`["127.0.0.0/8"]`, `["127.0.0.1/32"]`), nil},
		"lan.state_dir":       {replace(`"lanstate"`, `"lanstate2"`), nil},
		"lan.acme_ca":         {replace(`"https://127.0.0.1:1/directory"`, `"https://127.0.0.1:2/directory"`), nil},
		"lan.acme_email":      {replace(`acme_email      = "admin@example.com"`, `acme_email      = "other@example.com"`), nil},
		"lan.dns_token_file":  {replace(`dns_token_file  = "key"`, `dns_token_file  = "oauth"`), nil},
		"lan.certificates":    {replace(`certificates    = "wildcard"`, `certificates    = "per_name"`), nil},
		"oidc": {func(s string) string {
			return s + `
oidc {
  issuer             = "https://127.0.0.1:1/realms/home"
  client_id          = "gatehouse"
  client_secret_file = "secret"
  cookie_key_file    = "state/cookie.keys"
}
route "photos" {
  backend = "` + backend + `"
  cloudflare {
    host   = "photos"
    access = "family"
  }
}
`
		}, func(t *testing.T, g *testServer) {
			// Family sign-in is installed: it answers its own endpoint.
			if code, body := get(t, c, g.addr, "photos.example.com", "/.gatehouse/login"); code != http.StatusServiceUnavailable || !strings.Contains(body, "try again shortly") {
				t.Errorf("sign-in endpoint after adding oidc: %d %q", code, body)
			}
		}},
		"metrics": {replace(`listen = "127.0.0.1:2"`, `listen = "127.0.0.1:5"`), func(t *testing.T, g *testServer) {
			if code, _ := get(t, c, g.metricsAddr, "", "/metrics"); code != 200 {
				t.Errorf("the running metrics listener stopped answering: %d", code)
			}
		}},
		"limit": {replace(`rate        = "1000/s"
  burst       = 1000`, `rate        = "1/h"
  burst       = 1`), func(t *testing.T, g *testServer) {
			get(t, c, g.addr, "a.example.com", "/")
			if code, _ := get(t, c, g.addr, "a.example.com", "/"); code != http.StatusTooManyRequests {
				t.Errorf("second request under the new limit: %d, want 429", code)
			}
		}},
		"limit.max_clients":          {replace(`max_clients = 1000`, `max_clients = 2000`), nil},
		"server.read_header_timeout": {replace(`read_header_timeout   = "10s"`, `read_header_timeout   = "11s"`), nil},
		"server.idle_timeout":        {replace(`idle_timeout          = "120s"`, `idle_timeout          = "121s"`), nil},
		"server.max_header_bytes": {replace(`max_header_bytes      = "8KiB"`, `max_header_bytes      = "64KiB"`), func(t *testing.T, g *testServer) {
			req, _ := http.NewRequest("GET", "http://"+g.addr+"/", nil)
			req.Host = "a.example.com"
			req.Header.Set("X-Big", strings.Repeat("b", 20<<10))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("a 20 KiB header: %d, want 431 (the running limit of 8 KiB)", resp.StatusCode)
			}
		}},
		"server.stall_timeout":         {replace(`stall_timeout         = "60s"`, `stall_timeout         = "61s"`), inForce("server.stall_timeout")},
		"server.upstream_idle_timeout": {replace(`upstream_idle_timeout = "4s"`, `upstream_idle_timeout = "3s"`), inForce("server.upstream_idle_timeout")},
		"server.shutdown_timeout":      {replace(`shutdown_timeout      = "30s"`, `shutdown_timeout      = "31s"`), inForce("server.shutdown_timeout")},
		"server.response_timeout": {replace(`response_timeout      = "2m"`, `response_timeout      = "1s"`), func(t *testing.T, g *testServer) {
			if code, _ := get(t, c, g.addr, "slow.example.com", "/"); code != http.StatusGatewayTimeout {
				t.Errorf("silent backend under the new response_timeout: %d, want 504", code)
			}
		}},
	}
	for _, s := range Settings {
		tc, ok := cases[s.Name]
		if !ok {
			t.Errorf("setting %q of the reload table has no case here", s.Name)
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"secret", "key", "oauth"} {
				writeFile(t, filepath.Join(dir, f), "s3cret\n")
			}
			config := filepath.Join(dir, "routes.hcl")
			writeFile(t, config, base)
			log := &syncLog{}
			g := startServer(t, config, Options{Log: slog.New(slog.NewTextHandler(log, nil))})
			writeFile(t, config, tc.edit(base))
			if err := g.waitReload(t); err != nil {
				t.Fatalf("reload: %v", err)
			}
			want := `msg="setting changed; applied" setting=` + s.Name + "\n"
			if s.Applies == AtRestart {
				want = `msg="setting changed; it applies after restart, the running value stays" setting=` + s.Name + " "
			}
			if !strings.Contains(log.String(), want) {
				t.Errorf("log does not say %q:\n%s", want, log)
			}
			if n := strings.Count(log.String(), "setting changed"); n != 1+len(alsoChanged[s.Name]) {
				t.Errorf("%d settings logged as changed, want %d:\n%s", n, 1+len(alsoChanged[s.Name]), log)
			}
			if tc.effect != nil {
				tc.effect(t, g)
			}
		})
	}
}

// inForce checks that the table in force carries the new value of a
// setting that is read from it per request.
func inForce(name string) func(t *testing.T, g *testServer) {
	return func(t *testing.T, g *testServer) {
		cfg, _, diags := routes.Load(g.opt.ConfigPath)
		if cfg == nil {
			t.Fatal(diags)
		}
		for _, s := range Settings {
			if s.Name == name && !reflect.DeepEqual(s.value(g.Gateway().Table().Config), s.value(cfg)) {
				t.Errorf("%s in force is %v, the file says %v", name, s.value(g.Gateway().Table().Config), s.value(cfg))
			}
		}
	}
}

// TestReloadTableInDocs: docs/ARCHITECTURE.md carries the reload table as
// the code has it.
func TestReloadTableInDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := WriteReloadTable(&want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, want.Bytes()) {
		t.Errorf("docs/ARCHITECTURE.md does not carry the reload table; paste this under \"Reload\":\n%s", want.String())
	}
}

// TestRejectedReloadLogLevels: a file that does not validate is logged
// error by error at ERROR, and its warnings at WARN, never as errors.
func TestRejectedReloadLogLevels(t *testing.T) {
	backend := startBackend(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	config := filepath.Join(t.TempDir(), "routes.hcl")
	writeFile(t, config, tableSource(appRoute("a", backend)))
	log := &syncLog{}
	g := startServer(t, config, Options{Log: slog.New(slog.NewTextHandler(log, nil))})
	// A route reachable through no door is a warning; a bad access an error.
	writeFile(t, config, tableSource(appRoute("a", backend)+`
route "lonely" {
  backend = "`+backend+`"
}
route "bad" {
  backend = "`+backend+`"
  cloudflare {
    host   = "bad"
    access = "everyone"
  }
}
`))
	if err := g.waitReload(t); err == nil {
		t.Fatal("a file with an error was accepted")
	}
	var errs, warns int
	for _, line := range strings.Split(log.String(), "\n") {
		if !strings.Contains(line, "reload rejected") {
			continue
		}
		switch {
		case strings.Contains(line, "level=ERROR") && !strings.Contains(line, "warning:"):
			errs++
		case strings.Contains(line, "level=WARN") && strings.Contains(line, "Route reachable through no door"):
			warns++
		default:
			t.Errorf("misfiled line: %s", line)
		}
	}
	if errs != 1 || warns != 1 {
		t.Errorf("%d errors and %d warnings logged, want 1 and 1:\n%s", errs, warns, log)
	}
}
