package auth

import (
	"context"
	"testing"

	"gatehouse/routes"
)

// rec is the tailnet's record of a peer on device "dev".
func rec(login string, tags []string, shared bool, caps map[string][]string) *PeerRecord {
	return &PeerRecord{Login: login, DisplayName: login, Device: "dev", Tags: tags, Shared: shared, Capabilities: caps}
}

func TestDecide(t *testing.T) {
	admins := NewAdminSet([]string{"Admin@Example.com", "tag:admin-laptop"}, "example.com/cap/gatehouse")
	grant := map[string][]string{"example.com/cap/gatehouse": {`{"role":"admin"}`}}
	otherGrant := map[string][]string{"example.com/cap/gatehouse": {`{"role":"viewer"}`}}
	tn := func(r *PeerRecord) Identity { return Identity{Tailnet: admins.Peer(r)} }
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
		{"admin login, any case", ready, routes.Admin, tn(rec("admin@example.com", nil, false, nil)), nil, Allow},
		{"admin tag", ready, routes.Admin, tn(rec("", []string{"tag:admin-laptop"}, false, nil)), nil, Allow},
		{"admin by grant", ready, routes.Admin, tn(rec("kid@example.com", nil, false, grant)), nil, Allow},
		{"grant with another role", ready, routes.Admin, tn(rec("kid@example.com", nil, false, otherGrant)), nil, Deny},
		{"member is not admin", ready, routes.Admin, tn(rec("kid@example.com", nil, false, nil)), nil, Deny},
		// Invariant 8, docs/ARCHITECTURE.md: Headscale reports the owner's
		// login for tagged nodes; the admin's tagged server must not pass
		// as the admin.
		{"tagged node with admin's login", ready, routes.Admin, tn(rec("admin@example.com", []string{"tag:server"}, false, nil)), nil, Deny},
		{"tagged node is not a member", ready, routes.Members, tn(rec("admin@example.com", []string{"tag:server"}, false, nil)), nil, Deny},
		{"admin-tagged node is a member", ready, routes.Members, tn(rec("", []string{"tag:admin-laptop"}, false, nil)), nil, Allow},
		{"shared-in node with admin's login", ready, routes.Admin, tn(rec("admin@example.com", nil, true, nil)), nil, Deny},
		{"shared-in node is not a member", ready, routes.Members, tn(rec("guest@other.example", nil, true, nil)), nil, Deny},
		{"member", ready, routes.Members, tn(rec("kid@example.com", nil, false, nil)), nil, Allow},
		{"no tailnet identity on admin route", ready, routes.Admin, Identity{}, nil, NotFound},
		{"no tailnet identity on members route", ready, routes.Members, fam, nil, NotFound},
		{"app needs nothing", ready, routes.App, Identity{}, nil, Allow},
		{"closed", ready, routes.Closed, tn(rec("admin@example.com", nil, false, nil)), nil, NotFound},
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

// Invariant 8, docs/ARCHITECTURE.md: the peer a tagged node becomes
// carries no login at all, so nothing after the decision (identity
// headers, logs, the 403 page) can pass the owner's login on either.
func TestTaggedPeerCarriesNoLogin(t *testing.T) {
	admins := NewAdminSet([]string{"admin@example.com"}, "")
	p := admins.Peer(rec("admin@example.com", []string{"tag:server"}, false, nil))
	if p.Login != "" || p.Admin || p.Device != "dev" || len(p.Tags) != 1 || p.Tags[0] != "tag:server" {
		t.Fatalf("tagged node with the admin's login became %+v", p)
	}
	if got := (Identity{Tailnet: p}).String(); got != "tag:server" {
		t.Fatalf("tagged node named %q, want its tag", got)
	}
}

type staticLookup struct{ rec *PeerRecord }

func (s staticLookup) LookupPeer(context.Context) (*PeerRecord, error) { return s.rec, nil }

func TestPeerLookupTravelsInTheContext(t *testing.T) {
	if PeerLookupFrom(context.Background()) != nil {
		t.Fatal("a context without a lookup has one")
	}
	want := rec("kid@example.com", nil, false, nil)
	got, err := PeerLookupFrom(WithPeerLookup(context.Background(), staticLookup{want})).LookupPeer(context.Background())
	if err != nil || got != want {
		t.Fatalf("LookupPeer = %v, %v", got, err)
	}
}
