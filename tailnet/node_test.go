package tailnet_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
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

// sharedNodeOnly is the tailnet block and a route table with gatehouse's
// shared node and no route nodes, joining controlURL's tailnet with an
// auth key from a file.
func sharedNodeOnly(t *testing.T, controlURL string) (*routes.TailnetConfig, *routes.Table) {
	t.Helper()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "authkey")
	if err := os.WriteFile(keyFile, []byte("tskey-test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &routes.TailnetConfig{
		Hostname: "gatehouse", StateDir: filepath.Join(dir, "state"), AuthKeyFile: keyFile,
		ControlURL: controlURL,
	}
	table, _, diags := routes.Parse([]byte("domain = \"example.com\"\ntailnet {\n  hostname = \"gatehouse\"\n}\n"), "t.hcl")
	if table == nil {
		t.Fatal(diags)
	}
	return cfg, routes.Compile(table)
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

	cfg, table := sharedNodeOnly(t, controlURL)
	cfg.Ephemeral = true
	nodes := tailnet.Start(cfg, table, tailnet.Options{
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

// A node restarted from its state listens for WireGuard on the UDP port
// it had before, so its peers' last working address still reaches it
// (tailnet/udpport.go says what a new port costs them).
func TestRestartedNodeKeepsItsUDPPort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tailnet nodes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	control := tailnettest.Control(t, "")
	cfg, table := sharedNodeOnly(t, control.HTTPTestServer.URL)
	// endpointPorts starts the node set, waits for the shared node to know
	// its endpoints (its socket's addresses, and the one STUN saw) and
	// returns their ports.
	endpointPorts := func() []string {
		t.Helper()
		started := make(chan *tsnet.Server, 1)
		nodes := tailnet.Start(cfg, table, tailnet.Options{
			Handlers: recordHandler{},
			Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
			Server:   routes.ServerConfig{ShutdownTimeout: 5 * time.Second},
			Started:  func(_ string, s *tsnet.Server) { started <- s },
		})
		defer nodes.Close()
		var s *tsnet.Server
		select {
		case s = <-started:
		case <-ctx.Done():
			t.Fatal("the node never started")
		}
		lc, err := s.LocalClient()
		if err != nil {
			t.Fatal(err)
		}
		for ctx.Err() == nil {
			if st, err := lc.Status(ctx); err == nil && st.Self != nil && len(st.Self.Addrs) > 0 {
				var ports []string
				for _, a := range st.Self.Addrs {
					_, port, err := net.SplitHostPort(a)
					if err != nil {
						t.Fatalf("endpoint %q: %v", a, err)
					}
					ports = append(ports, port)
				}
				slices.Sort(ports)
				return slices.Compact(ports)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatal("the node never learnt its endpoints")
		return nil
	}
	first := endpointPorts()
	if len(first) != 1 {
		t.Fatalf("the node's endpoints have ports %v, want one", first)
	}
	for i := range 2 {
		if again := endpointPorts(); !slices.Equal(again, first) {
			t.Fatalf("restart %d: endpoints on ports %v, before on %v", i+1, again, first)
		}
	}
}
