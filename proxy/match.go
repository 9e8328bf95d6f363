package proxy

import (
	"net/http"
	"net/url"

	"gatehouse/page"
	"gatehouse/routes"
)

// cleanPath returns the path a request is decided on, cleaned and decoded,
// which is also exactly the path the backend gets: nothing decided on
// differs from what is served. A path that cannot be decided on is
// answered with 400 and ok false.
func cleanPath(w http.ResponseWriter, u *url.URL) (path string, ok bool) {
	if !validPath(u.Path) || u.Path == "" && u.Opaque != "" {
		page.Write(w, http.StatusBadRequest, badRequestPage)
		return "", false
	}
	// Refused before the host is looked at, so the answer is the same for
	// every host (invariant 1) and no backend is reached (invariant 9).
	if routes.AmbiguousPath(u.Path) {
		page.Write(w, http.StatusBadRequest, ambiguousPathPage)
		return "", false
	}
	return routes.CleanPath(u.Path), true
}

// validPath refuses control characters, which no legitimate path carries
// and which backends parse in surprising ways.
func validPath(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f {
			return false
		}
	}
	return true
}

// match finds the route and path rule for a cleaned path. A route's own
// tailnet node serves that route whatever Host the client sent.
func (h *doorHandler) match(t *routes.Table, host, path string) routes.Match {
	if h.fixedHost != "" {
		host = h.fixedHost
	}
	return t.Match(h.door, host, path)
}
