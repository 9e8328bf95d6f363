package auth

import (
	"context"
	"errors"
	"testing"

	"tailscale.com/client/tailscale/apitype"
	"tailscale.com/tailcfg"

	"gatehouse/routes"
)

func whois(login string, tags []string, sharer tailcfg.UserID, caps tailcfg.PeerCapMap) *apitype.WhoIsResponse {
	return &apitype.WhoIsResponse{
		Node:        &tailcfg.Node{ComputedName: "dev", Tags: tags, Sharer: sharer},
		UserProfile: &tailcfg.UserProfile{LoginName: login, DisplayName: login},
		CapMap:      caps,
	}
}

func TestDecide(t *testing.T) {
	admins := NewAdminSet([]string{"Admin@Example.com", "tag:admin-laptop"}, "example.com/cap/gatehouse")
	grant := tailcfg.PeerCapMap{"example.com/cap/gatehouse": {`{"role":"admin"}`}}
	otherGrant := tailcfg.PeerCapMap{"example.com/cap/gatehouse": {`{"role":"viewer"}`}}
	tn := func(w *apitype.WhoIsResponse) Identity { return Identity{Tailnet: admins.Peer(w)} }
	fam := Identity{Family: &FamilyUser{Email: "kid@example.com", Groups: []string{"/family"}}}
	ready, down := Policy{SignInReady: true}, Policy{}

	cases := []struct {
		name   string
		p      Policy
		access routes.Access
		id     Identity
		groups []string
		want   Verdict
	}{
		{"admin login, any case", ready, routes.Admin, tn(whois("admin@example.com", nil, 0, nil)), nil, Allow},
		{"admin tag", ready, routes.Admin, tn(whois("", []string{"tag:admin-laptop"}, 0, nil)), nil, Allow},
		{"admin by grant", ready, routes.Admin, tn(whois("kid@example.com", nil, 0, grant)), nil, Allow},
		{"grant with another role", ready, routes.Admin, tn(whois("kid@example.com", nil, 0, otherGrant)), nil, Deny},
		{"member is not admin", ready, routes.Admin, tn(whois("kid@example.com", nil, 0, nil)), nil, Deny},
		// Invariant 8: Headscale reports the owner's login for tagged
		// nodes; the admin's tagged server must not pass as the admin.
		{"tagged node with admin's login", ready, routes.Admin, tn(whois("admin@example.com", []string{"tag:server"}, 0, nil)), nil, Deny},
		{"tagged node is not a member", ready, routes.Members, tn(whois("admin@example.com", []string{"tag:server"}, 0, nil)), nil, Deny},
		{"admin-tagged node is a member", ready, routes.Members, tn(whois("", []string{"tag:admin-laptop"}, 0, nil)), nil, Allow},
		{"shared-in node with admin's login", ready, routes.Admin, tn(whois("admin@example.com", nil, 42, nil)), nil, Deny},
		{"shared-in node is not a member", ready, routes.Members, tn(whois("guest@other.example", nil, 42, nil)), nil, Deny},
		{"member", ready, routes.Members, tn(whois("kid@example.com", nil, 0, nil)), nil, Allow},
		{"no tailnet identity on admin route", ready, routes.Admin, Identity{}, nil, NotFound},
		{"no tailnet identity on members route", ready, routes.Members, fam, nil, NotFound},
		{"app needs nothing", ready, routes.App, Identity{}, nil, Allow},
		{"closed", ready, routes.Closed, tn(whois("admin@example.com", nil, 0, nil)), nil, NotFound},
		{"family, sign-in down", down, routes.Family, fam, nil, SignInUnavailable},
		{"family, no session", ready, routes.Family, Identity{}, nil, SignIn},
		{"family, session", ready, routes.Family, fam, nil, Allow},
		{"family, in group", ready, routes.Family, fam, []string{"/parents", "/family"}, Allow},
		{"family, not in group", ready, routes.Family, fam, []string{"/parents"}, Deny},
	}
	for _, c := range cases {
		if got := c.p.Decide(c.access, c.id, c.groups); got != c.want {
			t.Errorf("%s: Decide(%v) = %v, want %v", c.name, c.access, got, c.want)
		}
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
	return whois("user@example.com", nil, 0, nil), nil
}

func TestConnWhoIsCachesPerConnectionOnly(t *testing.T) {
	w := &countingWhoIs{err: errors.New("tailscaled restarting")}
	c := NewConnWhoIs(w, "100.64.0.1:1234")
	if _, err := c.Get(context.Background()); err == nil {
		t.Fatal("a failed WhoIs gave an identity")
	}
	w.err = nil
	for range 3 {
		res, err := c.Get(context.Background())
		if err != nil || res.UserProfile.LoginName != "user@example.com" {
			t.Fatalf("Get: %v %v", res, err)
		}
	}
	if w.calls != 2 {
		t.Fatalf("WhoIs calls = %d, want 2 (failure not cached, success cached)", w.calls)
	}
	// A new connection asks again.
	NewConnWhoIs(w, "100.64.0.1:1234").Get(context.Background())
	if w.calls != 3 {
		t.Fatalf("a new connection reused another connection's identity")
	}
	ctx := WithConnWhoIs(context.Background(), c)
	if ConnWhoIsFrom(ctx) != c || ConnWhoIsFrom(context.Background()) != nil {
		t.Fatal("context round trip")
	}
}
