package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"gatehouse/routes"
)

// TestServeGatehouse: gatehouse's own endpoints answer only on the
// Cloudflare door's hosts with sign-in set up, under a built-in limit that
// Keycloak's back-channel logout is exempt from.
func TestServeGatehouse(t *testing.T) {
	g := stageGateway(t)
	serve := func(host, path string, signIn SignIn) (bool, *visit, *httptest.ResponseRecorder) {
		r := httptest.NewRequest("POST", "http://"+host+path, nil)
		r.RemoteAddr = "192.0.2.1:5000"
		h, v, rec := stageVisit(t, g, routes.Cloudflare, r)
		v.signIn = signIn
		v.fwd, _ = h.scrub(r, v.st.table.Config)
		served := h.serveGatehouse(v, r)
		h.release(v)
		return served, v, rec
	}
	fake := &fakeSignIn{}
	if served, _, _ := serve("app.example.com", "/.gatehouse/logout", nil); served {
		t.Error("served without sign-in")
	}
	if served, _, _ := serve("elsewhere.example.net", "/.gatehouse/logout", fake); served {
		t.Error("served on a host not in the table")
	}
	if served, _, rec := serve("app.example.com", "/.gatehouse/logout", fake); !served || rec.Code != http.StatusNoContent {
		t.Errorf("logout: served %v, %d", served, rec.Code)
	}
	if served, _, _ := serve("app.example.com", "/.gatehouse/elsewhere", fake); served {
		t.Error("an endpoint sign-in does not know was taken as served")
	}
	// The built-in burst is 20; far more are refused.
	var last *httptest.ResponseRecorder
	var lastVisit *visit
	for range 30 {
		_, lastVisit, last = serve("app.example.com", "/.gatehouse/logout", fake)
	}
	if last.Code != http.StatusTooManyRequests || last.Header().Get("Retry-After") == "" || lastVisit.routeName != "gatehouse" {
		t.Errorf("past the burst: %d (Retry-After %q, route %q), want 429 for route gatehouse",
			last.Code, last.Header().Get("Retry-After"), lastVisit.routeName)
	}
	if _, _, rec := serve("app.example.com", "/.gatehouse/backchannel-logout", fake); rec.Code == http.StatusTooManyRequests {
		t.Error("back-channel logout limited")
	}
}
