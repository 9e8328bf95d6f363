package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"gatehouse/routes"
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

// reloadBackend answers /hold/* only when released, /stream with a long
// body written in pieces until released, /ws with an echo, and anything
// else with its own name.
type reloadBackend struct {
	name    string
	release chan struct{}
	held    sync.WaitGroup
}

func (b *reloadBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/hold/"):
		b.held.Done()
		<-b.release
		fmt.Fprint(w, b.name+r.URL.Path)
	case r.URL.Path == "/stream":
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			select {
			case <-b.release:
				return
			default:
			}
		}
	case r.URL.Path == "/ws":
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	default:
		fmt.Fprint(w, b.name)
	}
}

func startBackend(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func tableSource(routesHCL string) string {
	return `domain = "example.com"
cloudflare {
  listen = "127.0.0.1:1"
}
` + routesHCL
}

func appRoute(name, backend string) string {
	return fmt.Sprintf(`
route %q {
  backend = %q
  cloudflare {
    host   = %q
    access = "app"
  }
}
`, name, backend, name)
}

type runningGateway struct {
	addr     string
	reloads  chan error
	reloadCh chan struct{}
	done     chan error
}

func startGateway(t *testing.T, configPath string) *runningGateway {
	t.Helper()
	cfg, _, diags := routes.Load(configPath)
	if cfg == nil {
		t.Fatalf("config: %v", diags)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &runningGateway{
		addr: ln.Addr().String(), reloads: make(chan error, 16),
		reloadCh: make(chan struct{}, 1), done: make(chan error, 1),
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		g.done <- serve(ctx, serveOptions{
			configPath: configPath, config: cfg, cloudflareListener: ln,
			log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
			reload:    g.reloadCh,
			watch:     true,
			reloaded:  func(err error) { g.reloads <- err },
			accessLog: true,
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-g.done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return g
}

func (g *runningGateway) waitReload(t testing.TB) error {
	t.Helper()
	select {
	case err := <-g.reloads:
		return err
	case <-time.After(20 * time.Second): // hang guard, not a timing assertion
		t.Fatal("no reload happened")
		return nil
	}
}

func get(t *testing.T, c *http.Client, addr, host, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A reload while 200 requests are in flight, a download is running and a
// WebSocket is open cuts none of them, and the new table is in force
// afterwards. A broken file then keeps the running table.
func TestReloadKeepsInFlightWork(t *testing.T) {
	a := &reloadBackend{name: "a", release: make(chan struct{})}
	a.held.Add(200)
	aURL := startBackend(t, a)
	bURL := startBackend(t, &reloadBackend{name: "b", release: make(chan struct{})})

	config := filepath.Join(t.TempDir(), "routes.hcl")
	writeFile(t, config, tableSource(appRoute("a", aURL)))
	gw := startGateway(t, config)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 300}}

	// 200 requests held inside the backend.
	type result struct {
		status int
		body   string
		err    error
	}
	results := make(chan result, 200)
	for i := range 200 {
		go func() {
			req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/hold/%d", gw.addr, i), nil)
			req.Host = "a.example.com"
			resp, err := client.Do(req)
			if err != nil {
				results <- result{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			results <- result{resp.StatusCode, string(b), err}
		}()
	}
	a.held.Wait()

	// A download in progress.
	dreq, _ := http.NewRequest("GET", "http://"+gw.addr+"/stream", nil)
	dreq.Host = "a.example.com"
	dresp, err := client.Do(dreq)
	if err != nil {
		t.Fatal(err)
	}
	defer dresp.Body.Close()
	if _, err := io.CopyN(io.Discard, dresp.Body, 1<<20); err != nil {
		t.Fatalf("download before reload: %v", err)
	}

	// An open WebSocket.
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, "ws://"+gw.addr+"/ws", &websocket.DialOptions{Host: "a.example.com"})
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	defer ws.CloseNow()
	echo := func(msg string) {
		t.Helper()
		if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("ws write %q: %v", msg, err)
		}
		_, got, err := ws.Read(ctx)
		if err != nil || string(got) != msg {
			t.Fatalf("ws echo %q: got %q, %v", msg, got, err)
		}
	}
	echo("before")

	// Reload through the file watcher: route b appears.
	if st, _ := get(t, client, gw.addr, "b.example.com", "/"); st != http.StatusNotFound {
		t.Fatalf("b before reload: %d", st)
	}
	writeFile(t, config, tableSource(appRoute("a", aURL)+appRoute("b", bURL)))
	if err := gw.waitReload(t); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if st, body := get(t, client, gw.addr, "b.example.com", "/"); st != 200 || body != "b" {
		t.Fatalf("b after reload: %d %q", st, body)
	}

	// Everything that was running still runs.
	echo("after")
	if _, err := io.CopyN(io.Discard, dresp.Body, 1<<20); err != nil {
		t.Fatalf("download after reload: %v", err)
	}
	close(a.release)
	for range 200 {
		r := <-results
		if r.err != nil || r.status != 200 || !strings.HasPrefix(r.body, "a/hold/") {
			t.Fatalf("held request: %d %q %v", r.status, r.body, r.err)
		}
	}
	if _, err := io.Copy(io.Discard, dresp.Body); err != nil {
		t.Fatalf("download end: %v", err)
	}

	// A broken file (SIGHUP path) keeps the running table and says why.
	writeFile(t, config, tableSource(appRoute("a", aURL)+`
route "c" {
  backend = "http://127.0.0.1:9"
  tailnet {
    acces = "admin"
  }
}`))
	err = gw.waitReload(t) // the watcher's attempt
	if err == nil || !strings.Contains(err.Error(), "acces") {
		t.Fatalf("broken reload: err = %v, want the diagnostic", err)
	}
	gw.reloadCh <- struct{}{}
	if err := gw.waitReload(t); err == nil {
		t.Fatal("SIGHUP reload of a broken file succeeded")
	}
	if st, body := get(t, client, gw.addr, "b.example.com", "/"); st != 200 || body != "b" {
		t.Fatalf("b after broken reload: %d %q (old table not kept)", st, body)
	}
}

// The drain on shutdown lets a running request finish.
func TestShutdownDrainsRunningRequests(t *testing.T) {
	a := &reloadBackend{name: "a", release: make(chan struct{})}
	a.held.Add(1)
	aURL := startBackend(t, a)
	config := filepath.Join(t.TempDir(), "routes.hcl")
	writeFile(t, config, tableSource(appRoute("a", aURL)))
	cfg, _, _ := routes.Load(config)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveOptions{configPath: config, config: cfg, cloudflareListener: ln,
			log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()
	got := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/hold/x", nil)
		req.Host = "a.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	a.held.Wait()
	cancel() // SIGTERM
	close(a.release)
	if body := <-got; body != "a/hold/x" {
		t.Fatalf("request during drain: %q", body)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
