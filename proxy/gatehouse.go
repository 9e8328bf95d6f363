package proxy

import (
	"net/http"
	"strings"
	"time"

	"gatehouse/ratelimit"
)

// serveGatehouse answers gatehouse's own endpoints under /.gatehouse/
// (sign-in callback, logout, device tokens) on the hosts of the Cloudflare and LAN doors,
// and reports whether it did. They get a strict limit of their own,
// whatever routes.hcl says; Keycloak's back-channel logouts are signed and
// come in bursts when an admin ends many sessions, so they are not limited,
// and neither is /.gatehouse/renew: after a restart every request of a
// page due for its session's check passes through it at once (a gallery's
// thumbnails), and it asks the provider at most once per session and
// refresh_interval.
func (h *doorHandler) serveGatehouse(v *visit, r *http.Request) bool {
	if v.signIn == nil || !strings.HasPrefix(v.path, "/.gatehouse/") || !v.st.table.HasHost(h.door, r.Host) {
		return false
	}
	if lim := h.g.signInLimit; lim != nil && v.path != "/.gatehouse/backchannel-logout" && v.path != "/.gatehouse/renew" {
		key := ratelimit.ClientKey("", v.fwd.client)
		verdict := lim.Allow(key, time.Now())
		if !verdict.OK {
			v.routeName = "gatehouse"
			h.g.tooMany(v.lw, v.routeName, verdict)
			return true
		}
		// Released without a status: the built-in limit has no ban rule.
		v.permit.gate = slot{lim: lim, key: key, verdict: verdict}
	}
	return v.signIn.ServeGatehouse(v.lw, r)
}
