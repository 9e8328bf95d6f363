package server

import (
	"net/http"
	"strings"

	"gatehouse/routes"
)

// portalHost sends a visitor of the oidc block's portal_host to the family
// portal: the host has no route of its own, so everything but gatehouse's
// own endpoints (which the door answers there) goes to /.gatehouse/.
func portalHost(table func() *routes.Table, door http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if table().IsPortalHost(routes.NormalizeHost(r.Host)) && !strings.HasPrefix(routes.CleanPath(r.URL.Path), "/.gatehouse/") {
			http.Redirect(w, r, "/.gatehouse/", http.StatusFound)
			return
		}
		door.ServeHTTP(w, r)
	})
}
