package signin

import (
	"net/http"
	"strings"

	"gatehouse/routes"
)

// ServeGatehouse answers gatehouse's own endpoints under /.gatehouse/ on
// family hosts; anything else is left to the route.
func (s *SignIn) ServeGatehouse(w http.ResponseWriter, r *http.Request) bool {
	host := strings.ToLower(r.Host)
	if !s.familyHost(routes.NormalizeHost(host)) {
		return false
	}
	path := routes.CleanPath(r.URL.Path)
	if path != callbackPath && path != backchannelPath {
		s.noteTokens(r)
	}
	switch path {
	case renewPath:
		// Any method: the request comes back to rd with its own (307).
		s.renew(w, r, host)
	case callbackPath:
		// GET only: a HEAD (a link checker) must not use up the sign-in.
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writePage(w, http.StatusMethodNotAllowed, "Method not allowed", "This address does not take that method.")
			return true
		}
		s.callback(w, r, host)
	case loginPath:
		if !allowMethods(w, r, http.MethodGet) {
			return true
		}
		s.login(w, r, host)
	case logoutPath:
		if !allowMethods(w, r, http.MethodGet, http.MethodPost) {
			return true
		}
		s.logout(w, r, host)
	case signedOutPath:
		if !allowMethods(w, r, http.MethodGet) {
			return true
		}
		s.signedOut(w, r, host)
	case backchannelPath:
		if !allowMethods(w, r, http.MethodPost) {
			return true
		}
		s.backchannel(w, r)
	case devicesPath:
		if !allowMethods(w, r, http.MethodGet, http.MethodPost) {
			return true
		}
		s.devicesPage(w, r, host)
	case portalPath:
		if !allowMethods(w, r, http.MethodGet) {
			return true
		}
		s.portal(w, r)
	default:
		return false
	}
	return true
}

func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writePage(w, http.StatusMethodNotAllowed, "Method not allowed", "This address does not take that method.")
	return false
}

// familyHost reports whether host is the Cloudflare or LAN host of a
// route with family access somewhere, or the family portal's host: the
// hosts sign-in begins on, returns to and has its callback on. Both doors
// answer the same public names, so one Keycloak redirect URI and one
// session cookie serve both.
func (s *SignIn) familyHost(host string) bool {
	t := s.opt.Table()
	if t == nil {
		return false
	}
	if t.IsPortalHost(host) {
		return true
	}
	for _, r := range t.Routes() {
		for _, door := range []routes.Door{routes.Cloudflare, routes.LAN} {
			if dr := r.Doors[door]; dr != nil && dr.Host == host && r.UsesAccess(door, routes.Family) {
				return true
			}
		}
	}
	return false
}

// The endpoints gatehouse answers itself on every family host.
const (
	callbackPath    = "/.gatehouse/callback"
	loginPath       = "/.gatehouse/login"
	logoutPath      = "/.gatehouse/logout"
	signedOutPath   = "/.gatehouse/signed-out"
	backchannelPath = "/.gatehouse/backchannel-logout"
	devicesPath     = "/.gatehouse/devices"
	renewPath       = "/.gatehouse/renew"
)
