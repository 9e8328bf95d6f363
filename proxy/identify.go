package proxy

import (
	"net/http"

	"gatehouse/auth"
	"gatehouse/page"
	"gatehouse/routes"
)

// identify establishes who is asking, from the door only (invariant 2,
// docs/ARCHITECTURE.md): on the tailnet door the WhoIs answer for the
// connection, on a family route a device token or a verified sign-in
// session. It sets v.id and returns the policy the decision is made under.
// It answers the request itself, and returns ok false, when the door cannot
// tell: no WhoIs answer (403, never forwarded anonymously) or a device
// token refused (the sign-in's own answer).
func (h *doorHandler) identify(v *visit, r *http.Request) (policy auth.Policy, ok bool) {
	policy = v.st.policy
	if h.door == routes.Tailnet {
		peer, ok := h.tailnetPeer(v, r)
		if !ok {
			page.Write(v.lw, http.StatusForbidden, whoIsFailedPage)
			return policy, false
		}
		v.id.Tailnet = peer
	}
	if v.m.Access != routes.Family || v.signIn == nil {
		return policy, true
	}
	if dt, isDT := v.signIn.(DeviceTokens); isDT && v.deviceToken != "" {
		// A device token stands for its owner and needs no provider:
		// it keeps working while Keycloak is down.
		u, ok := dt.Device(v.lw, r, v.deviceToken, v.fwd.client)
		if !ok {
			return policy, false
		}
		v.id.Family, policy.SignInReady = u, true
		return policy, true
	}
	// A session is judged even while the provider is away: one it
	// confirmed recently enough rides out the outage (the oidc block's
	// outage_grace); without one, sign-in is unavailable. Session may set
	// a renewed or cleared cookie on the answer.
	v.id.Family = v.signIn.Session(v.lw, r)
	policy.SignInReady = v.id.Family != nil || v.signIn.Ready()
	return policy, true
}

// tailnetPeer is the tailnet identity of the request's connection, from
// the connection's WhoIs lookup (tailnet/whois.go) only. No answer, no
// entry.
func (h *doorHandler) tailnetPeer(v *visit, r *http.Request) (*auth.TailnetPeer, bool) {
	peers := auth.PeerLookupFrom(r.Context())
	if peers == nil {
		return nil, false
	}
	rec, err := peers.LookupPeer(r.Context())
	if err != nil {
		h.g.log.Warn("tailnet identity unknown; request refused", "route", v.routeName, "client", v.fwd.client, "err", err)
		return nil, false
	}
	return v.st.admins.Peer(rec), true
}
