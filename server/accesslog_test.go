package server

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAccessLogFile: with AccessLogFile every request gets a Combined Log
// Format line; after the file is moved away, a value on ReopenLog (what
// SIGUSR1 sends) makes new lines go to a new file of the old name.
func TestAccessLogFile(t *testing.T) {
	backend := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) }))
	logFile := filepath.Join(t.TempDir(), "access.log")
	reopen := make(chan struct{}, 1)
	g := startServerWith(t, tableSource(appRoute("files", backend)), Options{AccessLogFile: logFile, ReopenLog: reopen})
	c := &http.Client{}
	get(t, c, g.addr, "files.example.com", "/first?x=1")
	get(t, c, g.addr, "nothing.example.com", "/probe")
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "127.0.0.1 - - [") || !strings.Contains(lines[0], `] "GET /first?x=1 HTTP/1.1" 200 5 "-" "Go-http-client/1.1"`) ||
		!strings.Contains(lines[1], `"GET /probe HTTP/1.1" 404 `) {
		t.Fatalf("access log:\n%s", b)
	}
	if err := os.Rename(logFile, logFile+".1"); err != nil {
		t.Fatal(err)
	}
	reopen <- struct{}{}
	deadline := time.Now().Add(20 * time.Second) // hang guard
	for {
		get(t, c, g.addr, "files.example.com", "/after")
		if b, _ := os.ReadFile(logFile); strings.Contains(string(b), "/after") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no line in the reopened file")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if old, _ := os.ReadFile(logFile + ".1"); !strings.Contains(string(old), "/first") {
		t.Errorf("the rotated file lost its lines: %s", old)
	}
}
