package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

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
	gw := startServer(t, config, Options{})
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
	g := startServer(t, config, Options{})
	got := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+g.addr+"/hold/x", nil)
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
	stopped := make(chan error, 1)
	go func() { stopped <- g.stop() }() // SIGTERM
	close(a.release)
	if body := <-got; body != "a/hold/x" {
		t.Fatalf("request during drain: %q", body)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}
