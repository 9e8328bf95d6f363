package proxy

import (
	"net/http"
	"strings"

	"gatehouse/auth"
)

// keepOwnCookies drops a backend's attempt to set one of gatehouse's own
// cookies from its answer, and says so: an app that tries is broken or
// compromised. (The other direction, a request's gatehouse cookies never
// reaching a backend, is SignIn.StripCookies in prepare.)
func (g *Gateway) keepOwnCookies(route string, h http.Header) {
	if n := dropGatehouseCookies(h); n > 0 {
		g.log.Warn("backend tried to set gatehouse's own cookie; removed from its answer", "route", route, "cookies", n)
	}
}

// dropGatehouseCookies removes the Set-Cookie lines of a backend's answer
// that name one of gatehouse's own cookies, and reports how many it
// removed. A backend never sets or clears them (invariant 10,
// docs/ARCHITECTURE.md); its own cookies pass untouched. A line without
// "=" counts by its whole first pair, as browsers read a nameless cookie.
func dropGatehouseCookies(h http.Header) int {
	vs := h["Set-Cookie"]
	dropped := 0
	for _, v := range vs {
		if isGatehouseSetCookie(v) {
			dropped++
		}
	}
	if dropped == 0 {
		return 0
	}
	kept := make([]string, 0, len(vs)-dropped)
	for _, v := range vs {
		if !isGatehouseSetCookie(v) {
			kept = append(kept, v)
		}
	}
	if len(kept) == 0 {
		delete(h, "Set-Cookie")
	} else {
		h["Set-Cookie"] = kept
	}
	return dropped
}

func isGatehouseSetCookie(line string) bool {
	pair, _, _ := strings.Cut(line, ";")
	name, _, _ := strings.Cut(pair, "=")
	return auth.IsGatehouseCookie(strings.TrimSpace(name))
}
