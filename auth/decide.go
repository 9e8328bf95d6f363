// Package auth decides who is asking and whether they may pass. It holds
// policy only: identities arrive from the doors already verified, so every
// rule here can be tested without a network.
package auth

import "gatehouse/routes"

// Identity is who a door has established the client to be. The zero value
// is an anonymous client.
type Identity struct {
	// Tailnet is set when the request arrived over the tailnet and WhoIs
	// named the peer.
	Tailnet *TailnetPeer
	// Family is set when a verified sign-in session came with the request.
	Family *FamilyUser
}

// TailnetPeer is the peer of a tailnet connection as access decisions see
// it: AdminSet.Peer makes it from the tailnet's PeerRecord.
type TailnetPeer struct {
	Login string // empty for tagged nodes
	// Name is the user's display name (for Tailscale-User-Name); empty for
	// tagged nodes.
	Name string
	// Device is the node's name on the tailnet: denial pages name it, and
	// rate limits count per device.
	Device string
	Tags   []string
	Admin  bool // in the admin set (by login, tag or grant)
	Shared bool // shared in from another tailnet
}

// FamilyUser is a signed-in family member.
type FamilyUser struct {
	Subject  string
	Email    string
	Username string // preferred_username
	Groups   []string
	// Device names the device token the request came with ("Mum's TV");
	// empty for a browser session.
	Device string
}

// String names the identity for logs and denial pages.
func (id Identity) String() string {
	switch {
	case id.Tailnet != nil && id.Tailnet.Login != "":
		return id.Tailnet.Login
	case id.Tailnet != nil && len(id.Tailnet.Tags) > 0:
		return id.Tailnet.Tags[0]
	case id.Family != nil:
		return id.Family.Email
	}
	return ""
}

// Verdict is the outcome of an access decision.
type Verdict uint8

const (
	// Allow: forward the request.
	Allow Verdict = iota
	// NotFound: answer exactly like an unknown host.
	NotFound
	// Deny: the client is known but not allowed (403 on the tailnet).
	Deny
	// SignIn: a family route and no session; send the browser to sign in.
	SignIn
	// SignInUnavailable: a family route but sign-in cannot work right now
	// (not configured, or the provider is down). Fails closed with 503.
	SignInUnavailable
)

// Policy holds what decisions depend on besides the request.
type Policy struct {
	// SignInReady reports whether family sign-in can currently work.
	SignInReady bool
}

// Decide applies an access level to an identity. groups are the route's
// required family groups (any one suffices).
func (p Policy) Decide(a routes.Access, id Identity, groups []string) Verdict {
	switch a {
	case routes.App:
		return Allow
	case routes.Admin:
		if id.Tailnet == nil {
			return NotFound
		}
		if id.Tailnet.Admin {
			return Allow
		}
		return Deny
	case routes.Members:
		if id.Tailnet == nil {
			return NotFound
		}
		// Tagged devices are servers, not people, and shared-in nodes
		// belong to someone else's tailnet: neither is a member.
		if id.Tailnet.Login == "" || len(id.Tailnet.Tags) > 0 || id.Tailnet.Shared {
			if id.Tailnet.Admin {
				return Allow
			}
			return Deny
		}
		return Allow
	case routes.Family:
		if !p.SignInReady {
			return SignInUnavailable
		}
		if id.Family == nil {
			return SignIn
		}
		if len(groups) == 0 {
			return Allow
		}
		for _, want := range groups {
			for _, have := range id.Family.Groups {
				if want == have {
					return Allow
				}
			}
		}
		return Deny
	}
	return NotFound
}
