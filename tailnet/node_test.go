package tailnet_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"tailscale.com/tsnet"

	"gatehouse/auth"
	"gatehouse/routes"
	"gatehouse/tailnet"
	"gatehouse/tailnet/tailnettest"
)

type tsnetPeer struct {
	name string
	s    *tsnet.Server
}

// recordHandler answers every request with the peer record the tailnet
// door attached to its connection.
type recordHandler struct{}

func (recordHandler) TailnetHandler(string, bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peers := auth.PeerLookupFrom(r.Context())
		if peers == nil {
			http.Error(w, "no peer lookup on this connection", http.StatusInternalServerError)
			return
		}
		rec, err := peers.LookupPeer(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(rec)
	})
}

// A real node on an in-process tailnet (no HTTPS certificates: plain HTTP
// on :80) hands its handler the peer record of each connection, from
// tailscaled's WhoIs: a user's device with the user's login, a tagged
// server with its tags.
func TestNodeNamesItsPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tailnet nodes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	control := tailnettest.Control(t, "")
	controlURL := control.HTTPTestServer.URL
	laptop, login := tailnettest.Peer(t, ctx, controlURL, "laptop", nil)
	nas, _ := tailnettest.Peer(t, ctx, controlURL, "nas", []string{"tag:server"})
	if login == "" {
		t.Fatal("testcontrol gave the laptop's user no login")
	}

	dir := t.TempDir()
	keyFile := filepath.Join(dir, "authkey")
	if err := os.WriteFile(keyFile, []byte("tskey-test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &routes.TailnetConfig{
		Hostname: "gatehouse", StateDir: filepath.Join(dir, "state"), AuthKeyFile: keyFile,
		ControlURL: controlURL, Ephemeral: true,
	}
	table, _, diags := routes.Parse([]byte("domain = \"example.com\"\ntailnet {\n  hostname = \"gatehouse\"\n}\n"), "t.hcl")
	if table == nil {
		t.Fatal(diags)
	}
	nodes := tailnet.Start(cfg, routes.Compile(table), tailnet.Options{
		Handlers: recordHandler{},
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Server:   routes.ServerConfig{ShutdownTimeout: 5 * time.Second},
	})
	t.Cleanup(nodes.Close)
	if got := nodes.Running(); !slices.Equal(got, []string{"gatehouse"}) {
		t.Fatalf("running nodes: %v", got)
	}

	ask := func(from *tsnetPeer) *auth.PeerRecord {
		t.Helper()
		url := "http://" + tailnettest.AddrOf(t, ctx, from.s, "gatehouse") + "/"
		client := &http.Client{Transport: &http.Transport{DialContext: from.s.Dial}}
		deadline := time.Now().Add(60 * time.Second) // hang guard: the node may still be coming up
		for {
			reqCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			req, _ := http.NewRequestWithContext(reqCtx, "GET", url, nil)
			resp, err := client.Do(req)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				cancel()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: %d %s", from.name, resp.StatusCode, body)
				}
				var rec auth.PeerRecord
				if err := json.Unmarshal(body, &rec); err != nil {
					t.Fatalf("%s: %v in %s", from.name, err, body)
				}
				return &rec
			}
			cancel()
			if time.Now().After(deadline) {
				t.Fatalf("%s: GET %s: %v", from.name, url, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	rec := ask(&tsnetPeer{"laptop", laptop})
	if rec.Login != login || len(rec.Tags) != 0 || rec.Shared || rec.Device != "laptop" {
		t.Errorf("the laptop's record: %+v (want login %s, no tags)", rec, login)
	}
	rec = ask(&tsnetPeer{"nas", nas})
	if !slices.Equal(rec.Tags, []string{"tag:server"}) || rec.Shared || rec.Device != "nas" {
		t.Errorf("the tagged server's record: %+v", rec)
	}
	if p := auth.NewAdminSet([]string{login}, "").Peer(rec); p.Admin || p.Login != "" {
		t.Errorf("the tagged server, judged with its owner's login in the admin set: %+v", p)
	}
}
