package proxy

import (
	"net/http"

	"gatehouse/auth"
	"gatehouse/page"
)

// decide applies the route's access level to the identity and answers
// every verdict but Allow: the same 404 as an unknown host for a client the
// route does not exist for (invariant 1, docs/ARCHITECTURE.md), 403 for a
// known one who may not pass, the sign-in's own answer (a redirect, or 401
// JSON for an app) for a family route without a session, and 503 while
// sign-in cannot work. It reports whether the request may go on.
func (h *doorHandler) decide(v *visit, r *http.Request, policy auth.Policy) bool {
	dr := v.m.Route.Doors[h.door]
	switch policy.Decide(v.m.Access, v.id, dr.Groups) {
	case auth.Allow:
		return true
	case auth.Deny:
		page.Write(v.lw, http.StatusForbidden, forbiddenPage(v.routeName, v.id, v.st.table.Config.Tailnet, r.URL.RequestURI()))
	case auth.SignIn:
		if v.signIn != nil {
			v.signIn.Begin(v.lw, r)
			return false
		}
		writeSignInUnavailable(v.lw, r, v.routeName)
	case auth.SignInUnavailable:
		writeSignInUnavailable(v.lw, r, v.routeName)
	default: // auth.NotFound, and any verdict this switch does not know
		writeNotFound(v.lw)
	}
	return false
}
