package server

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/health"
)

// TestBadGatewaySaysSinceWhen: a backend the health check finds down
// gets a 502 that says since when it has not answered, and the metrics
// listener exports gatehouse_backend_up for it.
func TestBadGatewaySaysSinceWhen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing answers there
	changes := make(chan health.State, 4)
	g := startServerWith(t, tableSource(fmt.Sprintf(`
route "files" {
  backend = "http://%s"
  cloudflare {
    host   = "files"
    access = "app"
  }
  health {
    interval = "50ms"
  }
}`, addr)), Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), HealthChanged: func(s health.State) {
		select {
		case changes <- s:
		default: // never block the checker
		}
	}})
	select {
	case st := <-changes:
		if st.Up {
			t.Fatalf("the check found %s up", addr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no health check result")
	}
	code, body := get(t, http.DefaultClient, g.addr, "files.example.com", "/")
	if code != http.StatusBadGateway || !strings.Contains(body, "has not answered since") {
		t.Errorf("GET files: %d %q, want 502 saying since when", code, body)
	}
	_, m := get(t, http.DefaultClient, g.metricsAddr, "metrics", "/metrics")
	if !strings.Contains(m, `gatehouse_backend_up{route="files"} 0`) || !strings.Contains(m, `gatehouse_backend_check_seconds{route="files"}`) {
		t.Errorf("metrics lack the backend's health:\n%s", grepLines(m, "gatehouse_backend"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestReloadAppliesHealth: a route's health block is part of the route
// row of the reload table and applies at once: a check turned on by a
// reload starts, and its state reaches the checker.
func TestReloadAppliesHealth(t *testing.T) {
	backend := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	changes := make(chan health.State, 4)
	src := func(health string) string {
		return tableSource(fmt.Sprintf(`
route "files" {
  backend = %q
  cloudflare {
    host   = "files"
    access = "app"
  }
  health {
    %s
  }
}`, backend, health))
	}
	config := filepath.Join(t.TempDir(), "routes.hcl")
	writeFile(t, config, src(`enabled = false`))
	g := startServer(t, config, Options{HealthChanged: func(s health.State) {
		select {
		case changes <- s:
		default:
		}
	}})
	if st, ok := g.Health().State("files"); !ok || !st.Off {
		t.Fatalf("before the reload: %+v %v, want the check off", st, ok)
	}
	writeFile(t, config, src(`path = "/ping"
    interval = "50ms"`))
	if err := g.waitReload(t); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-changes:
		if !st.Up || st.Target != "GET "+backend+"/ping" {
			t.Errorf("after the reload: %+v, want up via GET /ping", st)
		}
	case <-time.After(20 * time.Second): // hang guard
		t.Fatal("the check turned on by the reload never ran")
	}
}
