package tailnet

import (
	"context"
	"errors"
	"slices"
	"testing"

	"tailscale.com/client/tailscale/apitype"
	"tailscale.com/tailcfg"

	"gatehouse/auth"
	"gatehouse/routes"
)

func whoIsAnswer(login string, tags []string, sharer tailcfg.UserID, caps tailcfg.PeerCapMap) *apitype.WhoIsResponse {
	return &apitype.WhoIsResponse{
		Node:        &tailcfg.Node{ComputedName: "laptop", Tags: tags, Sharer: sharer},
		UserProfile: &tailcfg.UserProfile{LoginName: login, DisplayName: "Alice"},
		CapMap:      caps,
	}
}

func TestPeerRecordFromWhoIs(t *testing.T) {
	caps := tailcfg.PeerCapMap{"example.com/cap/gatehouse": {`{"role":"admin"}`, `{"role":"viewer"}`}}
	got := peerRecord(whoIsAnswer("alice@example.com", nil, 0, caps))
	if got.Login != "alice@example.com" || got.DisplayName != "Alice" || got.Device != "laptop" || got.Shared || len(got.Tags) != 0 {
		t.Errorf("user node: %+v", got)
	}
	if c := got.Capabilities["example.com/cap/gatehouse"]; !slices.Equal(c, []string{`{"role":"admin"}`, `{"role":"viewer"}`}) {
		t.Errorf("capabilities: %v", got.Capabilities)
	}
	if got := peerRecord(whoIsAnswer("guest@other.example", nil, 42, nil)); !got.Shared || got.Capabilities != nil {
		t.Errorf("shared-in node: %+v", got)
	}
	for _, w := range []*apitype.WhoIsResponse{nil, {UserProfile: &tailcfg.UserProfile{LoginName: "alice@example.com"}}} {
		if got := peerRecord(w); got != nil {
			t.Errorf("an answer without a node became %+v", got)
		}
	}
	// No user profile at all: a record without a login, never a panic.
	if got := peerRecord(&apitype.WhoIsResponse{Node: &tailcfg.Node{ComputedName: "nas"}}); got == nil || got.Login != "" || got.Device != "nas" {
		t.Errorf("node without a profile: %+v", got)
	}
}

// Invariant 8, docs/ARCHITECTURE.md, from tailscaled's answer to the
// decision: Headscale reports the key owner's login for a tagged node;
// the record keeps what control said, and the node is judged by its tags.
func TestTaggedNodeWithOwnersLoginIsJudgedByTags(t *testing.T) {
	w := whoIsAnswer("admin@example.com", []string{"tag:server"}, 0, nil)
	rec := peerRecord(w)
	if !slices.Equal(rec.Tags, []string{"tag:server"}) {
		t.Fatalf("tags: %v", rec.Tags)
	}
	w.Node.Tags[0] = "tag:changed"
	if rec.Tags[0] != "tag:server" {
		t.Fatal("the record shares its tags with tailscaled's answer")
	}
	admins := auth.NewAdminSet([]string{"admin@example.com"}, "")
	p := admins.Peer(rec)
	if p.Admin || p.Login != "" {
		t.Fatalf("the admin's tagged server became %+v", p)
	}
	if d := (auth.Policy{}).Decide(routes.Admin, auth.Identity{Tailnet: p}, nil); d != auth.Deny {
		t.Fatalf("the admin's tagged server on an admin route: %v, want Deny", d)
	}
	// The same login on an untagged node is the admin.
	if p := admins.Peer(peerRecord(whoIsAnswer("admin@example.com", nil, 0, nil))); !p.Admin {
		t.Fatalf("the admin's own laptop: %+v", p)
	}
}

type countingWhoIs struct {
	calls int
	err   error
}

func (c *countingWhoIs) WhoIs(ctx context.Context, addr string) (*apitype.WhoIsResponse, error) {
	c.calls++
	if c.err != nil {
		return nil, c.err
	}
	return whoIsAnswer("user@example.com", nil, 0, nil), nil
}

func TestConnPeerAsksOncePerConnection(t *testing.T) {
	w := &countingWhoIs{err: errors.New("tailscaled restarting")}
	c := newConnPeer(w, "100.64.0.1:1234")
	if _, err := c.LookupPeer(context.Background()); err == nil {
		t.Fatal("a failed WhoIs gave an identity")
	}
	w.err = nil
	for range 3 {
		rec, err := c.LookupPeer(context.Background())
		if err != nil || rec.Login != "user@example.com" {
			t.Fatalf("LookupPeer: %v %v", rec, err)
		}
	}
	if w.calls != 2 {
		t.Fatalf("WhoIs calls = %d, want 2 (failure not kept, success kept)", w.calls)
	}
	// A new connection asks again.
	newConnPeer(w, "100.64.0.1:1234").LookupPeer(context.Background())
	if w.calls != 3 {
		t.Fatalf("a new connection reused another connection's identity")
	}
}

type noNodeWhoIs struct{}

func (noNodeWhoIs) WhoIs(context.Context, string) (*apitype.WhoIsResponse, error) {
	return &apitype.WhoIsResponse{}, nil
}

func TestConnPeerWithoutNodeFails(t *testing.T) {
	if rec, err := newConnPeer(noNodeWhoIs{}, "100.64.0.1:1234").LookupPeer(context.Background()); err == nil {
		t.Fatalf("an answer naming no node gave %+v", rec)
	}
}
