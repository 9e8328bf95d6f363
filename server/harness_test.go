package server

// The harness of the server tests: a gateway run by startServer on real
// loopback listeners, backends, and route table snippets.

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

	"gatehouse/lan"
	"gatehouse/routes"
)

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

// testServer is a running gateway: its Cloudflare door and metrics
// listener on ephemeral loopback ports, reloads reported on a channel.
type testServer struct {
	*Server
	addr        string // the Cloudflare door
	lanAddr     string // the LAN door's HTTPS listener, "" without one
	metricsAddr string
	reloads     chan error
	reloadCh    chan struct{}
	cancel      context.CancelFunc
	done        chan error
}

// startServer is the one way the tests run a gateway: on the routes.hcl at
// configPath, watched, with o's test hooks (TailnetStarted, OIDCClient…).
// It stops when the test ends; stop ends it earlier.
func startServer(t testing.TB, configPath string, o Options) *testServer {
	t.Helper()
	cfg, _, diags := routes.Load(configPath)
	if cfg == nil {
		t.Fatalf("config: %v", diags)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &testServer{
		addr: ln.Addr().String(), metricsAddr: mln.Addr().String(),
		reloads: make(chan error, 16), reloadCh: make(chan struct{}, 1), done: make(chan error, 1),
	}
	o.ConfigPath, o.Config, o.CloudflareListener, o.MetricsListener = configPath, cfg, ln, mln
	if cfg.LAN != nil && o.LANListeners == nil {
		// The LAN door on loopback ports of its own; its certificates
		// from nowhere unless the test says where (LANManager): every
		// ACME and DNS request stays on a refused loopback port.
		for _, p := range []*[]net.Listener{&o.LANListeners, &o.LANRedirectListeners} {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			*p = []net.Listener{l}
		}
		g.lanAddr = o.LANListeners[0].Addr().String()
		if o.LANManager == nil {
			o.LANManager = func(mo *lan.ManagerOptions) { mo.Resolvers = []string{"127.0.0.1:1"} }
		}
	}
	o.Reload, o.Watch, o.AccessLog = g.reloadCh, true, true
	o.Reloaded = func(err error) { g.reloads <- err }
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if g.Server, err = New(o); err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() { g.done <- g.Run(ctx) }()
	t.Cleanup(func() {
		if err := g.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return g
}

// stop ends the gateway (as SIGTERM does) and waits for its drain.
func (g *testServer) stop() error {
	if g.cancel == nil {
		return nil
	}
	g.cancel()
	g.cancel = nil
	return <-g.done
}

// startServerWith writes hcl to a fresh routes.hcl and starts a gateway on it.
func startServerWith(t testing.TB, hcl string, o Options) *testServer {
	t.Helper()
	config := filepath.Join(t.TempDir(), "routes.hcl")
	writeFile(t, config, hcl)
	return startServer(t, config, o)
}

func (g *testServer) waitReload(t testing.TB) error {
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

// freePort returns a loopback port nothing listens on now, for programs
// that take a port number rather than a listener.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
