package tailnet

import (
	"bytes"
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"gatehouse/routes"
)

// deadURL is a loopback address nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

// `gatehouse login` with a control server that does not answer says so at
// once, naming it, instead of waiting without a word; nothing is joined.
func TestLoginSaysWhenControlDoesNotAnswer(t *testing.T) {
	control := deadURL(t)
	cfg := &routes.TailnetConfig{Hostname: "gatehouse", StateDir: t.TempDir(), ControlURL: control}
	table, _, diags := routes.Parse([]byte("domain = \"example.com\"\ntailnet {\n  hostname = \"gatehouse\"\n}\n"), "t.hcl")
	if table == nil {
		t.Fatal(diags)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // hang guard
	defer cancel()
	var out bytes.Buffer
	err := Login(ctx, cfg, routes.Compile(table), &out)
	if err == nil || !strings.Contains(err.Error(), "the control server "+control+" does not answer") || !strings.Contains(err.Error(), "control_url") {
		t.Fatalf("Login = %v, want the control server named as not answering", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Login waited for the hang guard instead of saying so")
	}
	if entries, _ := os.ReadDir(cfg.StateDir); len(entries) != 0 {
		t.Errorf("Login left state behind: %v", entries)
	}
}
