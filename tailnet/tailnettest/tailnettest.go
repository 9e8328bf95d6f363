// Package tailnettest runs a whole tailnet inside a test process: an
// in-process control server (tailscale.com's testcontrol) with DERP and
// STUN on loopback, and client nodes joined to it. Nothing leaves the
// machine, and log upload is off.
package tailnettest

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"tailscale.com/logtail"
	"tailscale.com/net/netns"
	"tailscale.com/tailcfg"
	"tailscale.com/tsnet"
	"tailscale.com/tstest/integration"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/logger"
)

// Tags the control server lets nodes advertise.
var Tags = []string{"tag:admin-laptop", "tag:server"}

// Control runs a control server. magicDNS is the tailnet's MagicDNS
// domain ("tail-scale.ts.net"); an empty one is a tailnet without HTTPS
// certificates. Each of configure runs before the server starts (e.g. to
// set AllNodesSameUser: one user with several devices).
func Control(t testing.TB, magicDNS string, configure ...func(*testcontrol.Server)) *testcontrol.Server {
	t.Helper()
	// tsnet uploads no logs under test already; this is the process-wide
	// kill switch on top.
	logtail.Disable()
	netns.SetEnabled(false)
	t.Cleanup(func() { netns.SetEnabled(true) })
	derpMap := integration.RunDERPAndSTUN(t, logger.Discard, "127.0.0.1")
	owners := map[string][]string{}
	for _, tag := range Tags {
		owners[tag] = nil
	}
	control := &testcontrol.Server{
		DERPMap:        derpMap,
		DNSConfig:      &tailcfg.DNSConfig{Proxied: true},
		MagicDNSDomain: magicDNS,
		TagOwners:      owners,
		Logf:           logger.Discard,
	}
	for _, f := range configure {
		f(control)
	}
	control.HTTPTestServer = httptest.NewUnstartedServer(control)
	control.HTTPTestServer.Start()
	t.Cleanup(control.HTTPTestServer.Close)
	return control
}

// Peer joins a client node named name (with tags, if any) to the tailnet
// of controlURL and returns it with the login control gave its user. The
// node leaves when the test ends.
func Peer(t testing.TB, ctx context.Context, controlURL, name string, tags []string) (s *tsnet.Server, login string) {
	t.Helper()
	s = &tsnet.Server{
		Dir: filepath.Join(t.TempDir(), name), Hostname: name, ControlURL: controlURL,
		Ephemeral: true, AdvertiseTags: tags, AuthKey: "test-key", Logf: logger.Discard, UserLogf: logger.Discard,
	}
	t.Cleanup(func() { s.Close() })
	st, err := s.Up(ctx)
	if err != nil {
		t.Fatalf("peer %s: %v", name, err)
	}
	if u, ok := st.User[st.Self.UserID]; ok {
		login = u.LoginName
	}
	return s, login
}

// AddrOf waits until the node named hostname shows up in from's view of
// the tailnet and returns its first tailnet address. It is for tailnets
// without MagicDNS, where names do not resolve.
func AddrOf(t testing.TB, ctx context.Context, from *tsnet.Server, hostname string) string {
	t.Helper()
	lc, err := from.LocalClient()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second) // hang guard
	for {
		if st, err := lc.Status(ctx); err == nil {
			for _, p := range st.Peer {
				if p.HostName == hostname && len(p.TailscaleIPs) > 0 {
					return p.TailscaleIPs[0].String()
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared on the tailnet", hostname)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
