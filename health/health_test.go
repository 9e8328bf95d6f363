package health

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"gatehouse/metrics"
	"gatehouse/routes"
)

// syncBuffer is a log sink the checker's goroutines and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func parseRoutes(t *testing.T, src string) []*routes.Route {
	t.Helper()
	cfg, _, diags := routes.Parse([]byte("domain = \"example.com\"\n"+src), "routes.hcl")
	if cfg == nil {
		t.Fatal(diags)
	}
	return cfg.Routes
}

// wait returns the next state change, failing after a hang guard.
func wait(t *testing.T, ch <-chan State) State {
	t.Helper()
	select {
	case st := <-ch:
		return st
	case <-time.After(20 * time.Second):
		t.Fatal("no health state change")
	}
	return State{}
}

func newChecker(t *testing.T) (*Checker, <-chan State, *metrics.Metrics, *syncBuffer) {
	changes := make(chan State, 16)
	m := metrics.New(nil)
	log := &syncBuffer{}
	c := New(Options{Log: slog.New(slog.NewTextHandler(log, nil)), Metrics: m, Changed: func(s State) {
		select {
		case changes <- s:
		default: // never block the checker: the test reads what it waits for
		}
	}})
	t.Cleanup(c.Close)
	return c, changes, m, log
}

// TestTCPBackendDownAndBack closes a backend's listener and opens it again
// on the same port: the check sees it go and come back, logs each change
// once, and the metrics follow.
func TestTCPBackendDownAndBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go acceptAll(ln)
	c, changes, m, log := newChecker(t)
	c.Sync(parseRoutes(t, fmt.Sprintf(`
route "files" {
  backend = "http://%s"
  cloudflare {
    host   = "h1"
    access = "app"
  }
  health {
    interval = "20ms"
  }
}`, addr)))

	st := wait(t, changes)
	if !st.Up || st.Route != "files" || st.Target != "tcp "+addr {
		t.Fatalf("first state %+v, want files up via tcp %s", st, addr)
	}
	if v := testutil.ToFloat64(m.BackendUp.WithLabelValues("files")); v != 1 {
		t.Errorf("gatehouse_backend_up = %v, want 1", v)
	}

	ln.Close()
	st = wait(t, changes)
	if st.Up || st.LastError == "" {
		t.Fatalf("after close: %+v, want down with an error", st)
	}
	since, down := c.DownSince("files")
	if !down || !since.Equal(st.Since) {
		t.Errorf("DownSince = %v %v, want %v true", since, down, st.Since)
	}
	if v := testutil.ToFloat64(m.BackendUp.WithLabelValues("files")); v != 0 {
		t.Errorf("gatehouse_backend_up = %v while down, want 0", v)
	}
	// Several more checks fail while it stays down; none is a change.
	for seen := 0; seen < 3; {
		if s, _ := c.State("files"); s.LastCheck.After(st.LastCheck) {
			seen++
			st = s
		}
		time.Sleep(10 * time.Millisecond)
	}

	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	defer ln2.Close()
	go acceptAll(ln2)
	st = wait(t, changes)
	if !st.Up {
		t.Fatalf("after reopening: %+v, want up", st)
	}
	if _, down := c.DownSince("files"); down {
		t.Error("DownSince still reports down")
	}
	out := log.String()
	if n := strings.Count(out, "backend not answering"); n != 1 {
		t.Errorf("logged down %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "backend answering again"); n != 1 {
		t.Errorf("logged back %d times, want once:\n%s", n, out)
	}
	if n := testutil.CollectAndCount(m.BackendCheck); n != 1 {
		t.Errorf("gatehouse_backend_check_seconds has %d series, want 1", n)
	}
}

func acceptAll(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// TestHTTPHealthPath checks a GET of health.path: a 500 is down, a 200 up,
// and only that path is asked.
func TestHTTPHealthPath(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	var wrongPath atomic.Value
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/app/healthz" {
			wrongPath.Store(r.URL.Path)
		}
		if failing.Load() {
			http.Error(w, "database gone", http.StatusInternalServerError)
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()

	c, changes, _, _ := newChecker(t)
	c.Sync(parseRoutes(t, fmt.Sprintf(`
route "wiki" {
  backend = "http://%s/app"
  cloudflare {
    host   = "h2"
    access = "app"
  }
  health {
    path     = "/healthz"
    interval = "20ms"
  }
}`, ln.Addr())))
	st := wait(t, changes)
	if st.Up || !strings.Contains(st.LastError, "500") {
		t.Fatalf("state %+v, want down with the 500", st)
	}
	if want := "GET http://" + ln.Addr().String() + "/app/healthz"; st.Target != want {
		t.Errorf("target %q, want %q", st.Target, want)
	}
	failing.Store(false)
	if st = wait(t, changes); !st.Up {
		t.Fatalf("state %+v, want up", st)
	}
	if p := wrongPath.Load(); p != nil {
		t.Errorf("checker asked %v", p)
	}
}

// TestSyncKeepsAndDrops: a reload that keeps a route keeps its check and
// history; one that drops it stops it and removes its metrics; health
// { enabled = false } never checks.
func TestSyncKeepsAndDrops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go acceptAll(ln)
	c, changes, m, _ := newChecker(t)
	src := fmt.Sprintf(`
route "a" {
  backend = "http://%s"
  cloudflare {
    host   = "h3"
    access = "app"
  }
  health {
    interval = "20ms"
  }
}
route "quiet" {
  backend = "http://127.0.0.1:9"
  cloudflare {
    host   = "h4"
    access = "app"
  }
  health {
    enabled = false
  }
}`, ln.Addr())
	c.Sync(parseRoutes(t, src))
	first := wait(t, changes)
	c.Sync(parseRoutes(t, src))
	if st, _ := c.State("a"); !st.Since.Equal(first.Since) {
		t.Errorf("an unchanged route's check restarted: since %v, was %v", st.Since, first.Since)
	}
	if st, ok := c.State("quiet"); !ok || !st.Off || st.Checked {
		t.Errorf("quiet: %+v %v, want off and never checked", st, ok)
	}
	c.Sync(nil)
	if _, ok := c.State("a"); ok {
		t.Error("a dropped route still has a state")
	}
	if n := testutil.CollectAndCount(m.BackendUp); n != 0 {
		t.Errorf("gatehouse_backend_up keeps %d series after the route went", n)
	}
}
