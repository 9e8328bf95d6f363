package tailnet

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"tailscale.com/client/tailscale/apitype"

	"gatehouse/auth"
)

// whoIser names the tailnet peer behind a connection. tsnet's local client
// satisfies it.
type whoIser interface {
	WhoIs(ctx context.Context, remoteAddr string) (*apitype.WhoIsResponse, error)
}

// peerRecord turns tailscaled's WhoIs answer into the plain record auth
// decides on. It copies what the control server said and judges nothing:
// that a tagged node's login does not count is auth's rule
// (auth.AdminSet.Peer), so the login is passed on as reported.
func peerRecord(w *apitype.WhoIsResponse) *auth.PeerRecord {
	if w == nil || w.Node == nil {
		return nil
	}
	rec := &auth.PeerRecord{
		Device: w.Node.ComputedName,
		Shared: w.Node.Sharer != 0,
	}
	if w.Node.IsTagged() {
		rec.Tags = slices.Clone(w.Node.Tags)
	}
	if w.UserProfile != nil {
		rec.Login = w.UserProfile.LoginName
		rec.DisplayName = w.UserProfile.DisplayName
	}
	if len(w.CapMap) > 0 {
		rec.Capabilities = make(map[string][]string, len(w.CapMap))
		for capability, values := range w.CapMap {
			raw := make([]string, len(values))
			for i, v := range values {
				raw[i] = string(v)
			}
			rec.Capabilities[string(capability)] = raw
		}
	}
	return rec
}

// connPeer looks up the peer of one connection and keeps the answer exactly
// as long as the connection: a new connection (which may come from a
// different peer reusing an address) asks again. Failures are not kept, so
// the next request on the connection asks again.
type connPeer struct {
	whois whoIser
	addr  string
	mu    sync.Mutex
	rec   *auth.PeerRecord
}

func newConnPeer(w whoIser, remoteAddr string) *connPeer {
	return &connPeer{whois: w, addr: remoteAddr}
}

// LookupPeer returns the peer's record, asking tailscaled once per
// connection.
func (c *connPeer) LookupPeer(ctx context.Context) (*auth.PeerRecord, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec != nil {
		return c.rec, nil
	}
	res, err := c.whois.WhoIs(ctx, c.addr)
	if err != nil {
		return nil, fmt.Errorf("whois %s: %w", c.addr, err)
	}
	rec := peerRecord(res)
	if rec == nil {
		return nil, fmt.Errorf("whois %s: no node", c.addr)
	}
	c.rec = rec
	return rec, nil
}
