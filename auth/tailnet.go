package auth

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
)

// PeerRecord is what the tailnet says about the peer behind a connection,
// in plain terms. The tailnet door (tailnet/) fills it from tailscaled's
// WhoIs answer, so the decisions here need no Tailscale package.
type PeerRecord struct {
	// Login is the login name the control server reports for the node's
	// user. Some control servers (Headscale) report the key owner's login
	// for tagged nodes too, so it is ignored when Tags is set.
	Login       string
	DisplayName string
	// Device is the node's name on the tailnet.
	Device string
	// Tags are the node's ACL tags ("tag:server"). A tagged node belongs to
	// no user.
	Tags []string
	// Shared is set for a node shared in from another tailnet.
	Shared bool
	// Capabilities are the peer capabilities the tailnet policy file grants
	// the node, each with its raw JSON values.
	Capabilities map[string][]string
}

// PeerLookup names the tailnet peer behind one connection. The tailnet door
// attaches one to every connection it accepts; requests that came another
// way have none.
type PeerLookup interface {
	LookupPeer(ctx context.Context) (*PeerRecord, error)
}

type peerLookupKey struct{}

// WithPeerLookup attaches a connection's peer lookup to its context.
func WithPeerLookup(ctx context.Context, l PeerLookup) context.Context {
	return context.WithValue(ctx, peerLookupKey{}, l)
}

// PeerLookupFrom returns the connection's peer lookup, or nil when the
// request did not come through the tailnet door.
func PeerLookupFrom(ctx context.Context) PeerLookup {
	l, _ := ctx.Value(peerLookupKey{}).(PeerLookup)
	return l
}

// AdminSet says which tailnet identities are admins: login names, tags, or
// a grant of the admin capability in the tailnet policy file.
type AdminSet struct {
	logins map[string]bool
	tags   map[string]bool
	// capability is the peer capability whose value grants admin, e.g.
	// "example.com/cap/gatehouse" with {"role": "admin"}.
	capability string
}

// NewAdminSet builds an admin set from routes.hcl's tailnet.admins entries
// ("alice@example.com", "tag:admin-laptop") and an optional capability name.
func NewAdminSet(admins []string, capability string) AdminSet {
	a := AdminSet{logins: map[string]bool{}, tags: map[string]bool{}, capability: capability}
	for _, s := range admins {
		if strings.HasPrefix(s, "tag:") {
			a.tags[s] = true
		} else {
			a.logins[strings.ToLower(s)] = true
		}
	}
	return a
}

// capValue is the JSON a grant carries in the admin capability.
type capValue struct {
	Role string `json:"role"`
}

// Peer turns the tailnet's record of a peer into the identity access
// decisions use.
//
// A tagged node is judged by its tags only: some control servers
// (Headscale) report the key owner's login for tagged nodes, and an admin's
// login must not admit the admin's tagged servers.
func (a AdminSet) Peer(rec *PeerRecord) *TailnetPeer {
	if rec == nil {
		return nil
	}
	p := &TailnetPeer{Device: rec.Device, Shared: rec.Shared}
	if len(rec.Tags) > 0 {
		p.Tags = slices.Clone(rec.Tags)
		for _, t := range p.Tags {
			if a.tags[t] {
				p.Admin = true
			}
		}
	} else if rec.Login != "" {
		p.Login = rec.Login
		p.Name = rec.DisplayName
		// A node shared in from another tailnet carries its owner's login
		// from there; it is never one of ours, whatever it is called.
		if !p.Shared && a.logins[strings.ToLower(p.Login)] {
			p.Admin = true
		}
	}
	if a.capability != "" && !p.Admin {
		for _, raw := range rec.Capabilities[a.capability] {
			var v capValue
			if json.Unmarshal([]byte(raw), &v) == nil && v.Role == "admin" {
				p.Admin = true
			}
		}
	}
	return p
}
