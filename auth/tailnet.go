package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"tailscale.com/client/tailscale/apitype"
	"tailscale.com/tailcfg"
)

// WhoIser names the tailnet peer behind a connection. tsnet's LocalClient
// satisfies it; auth never needs the rest of tsnet.
type WhoIser interface {
	WhoIs(ctx context.Context, remoteAddr string) (*apitype.WhoIsResponse, error)
}

// AdminSet says which tailnet identities are admins: login names, tags, or
// a grant of the admin capability in the tailnet policy file.
type AdminSet struct {
	logins map[string]bool
	tags   map[string]bool
	// capability is the peer capability whose value grants admin, e.g.
	// "example.com/cap/gatehouse" with {"role": "admin"}.
	capability tailcfg.PeerCapability
}

// NewAdminSet builds an admin set from routes.hcl's tailnet.admins entries
// ("alice@example.com", "tag:admin-laptop") and an optional capability name.
func NewAdminSet(admins []string, capability string) AdminSet {
	a := AdminSet{logins: map[string]bool{}, tags: map[string]bool{}, capability: tailcfg.PeerCapability(capability)}
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

// Peer turns a WhoIs answer into the identity access decisions use.
//
// A tagged node is judged by its tags only: some control servers
// (Headscale) report the key owner's login for tagged nodes, and an admin's
// login must not admit the admin's tagged servers.
func (a AdminSet) Peer(w *apitype.WhoIsResponse) *TailnetPeer {
	if w == nil || w.Node == nil {
		return nil
	}
	p := &TailnetPeer{Name: w.Node.ComputedName, Shared: w.Node.Sharer != 0}
	if w.Node.IsTagged() {
		p.Tags = slices.Clone(w.Node.Tags)
		for _, t := range p.Tags {
			if a.tags[t] {
				p.Admin = true
			}
		}
	} else if w.UserProfile != nil {
		p.Login = w.UserProfile.LoginName
		p.Name = w.UserProfile.DisplayName
		// A node shared in from another tailnet carries its owner's login
		// from there; it is never one of ours, whatever it is called.
		if !p.Shared && a.logins[strings.ToLower(p.Login)] {
			p.Admin = true
		}
	}
	if a.capability != "" && !p.Admin {
		for _, raw := range w.CapMap[a.capability] {
			var v capValue
			if json.Unmarshal([]byte(raw), &v) == nil && v.Role == "admin" {
				p.Admin = true
			}
		}
	}
	return p
}

// ConnWhoIs caches the WhoIs answer of one connection. It lives exactly
// as long as the connection: a new connection (which may come from a
// different peer reusing an address) asks again. Failures are not cached.
type ConnWhoIs struct {
	whois WhoIser
	addr  string
	mu    sync.Mutex
	res   *apitype.WhoIsResponse
}

// NewConnWhoIs prepares the lookup for a connection from remoteAddr.
func NewConnWhoIs(w WhoIser, remoteAddr string) *ConnWhoIs {
	return &ConnWhoIs{whois: w, addr: remoteAddr}
}

// Get returns the peer's WhoIs answer, asking once per connection.
func (c *ConnWhoIs) Get(ctx context.Context) (*apitype.WhoIsResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.res != nil {
		return c.res, nil
	}
	res, err := c.whois.WhoIs(ctx, c.addr)
	if err != nil {
		return nil, fmt.Errorf("whois %s: %w", c.addr, err)
	}
	if res == nil || res.Node == nil {
		return nil, fmt.Errorf("whois %s: no node", c.addr)
	}
	c.res = res
	return res, nil
}

type connWhoIsKey struct{}

// WithConnWhoIs attaches a connection's WhoIs lookup to its context; the
// tailnet door does this for every connection it accepts.
func WithConnWhoIs(ctx context.Context, c *ConnWhoIs) context.Context {
	return context.WithValue(ctx, connWhoIsKey{}, c)
}

// ConnWhoIsFrom returns the connection's WhoIs lookup, or nil when the
// request did not come through the tailnet door.
func ConnWhoIsFrom(ctx context.Context) *ConnWhoIs {
	c, _ := ctx.Value(connWhoIsKey{}).(*ConnWhoIs)
	return c
}
