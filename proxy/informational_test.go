package proxy_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"gatehouse/auth"
)

// renewingSignIn is a family sign-in whose every session is renewed: it
// sets a new session cookie on the answer before the request is forwarded,
// as the signin package does when a session is refreshed.
type renewingSignIn struct{}

const renewedCookie = "__Host-gatehouse=renewed; Path=/; Secure; HttpOnly; SameSite=Lax"

func (renewingSignIn) Ready() bool { return true }
func (renewingSignIn) Session(w http.ResponseWriter, _ *http.Request) *auth.FamilyUser {
	w.Header().Add("Set-Cookie", renewedCookie)
	return &auth.FamilyUser{Subject: "s-alice", Email: "alice@example.com"}
}
func (renewingSignIn) StripCookies(http.Header)                               {}
func (renewingSignIn) ServeGatehouse(http.ResponseWriter, *http.Request) bool { return false }
func (renewingSignIn) Begin(w http.ResponseWriter, _ *http.Request)           { w.WriteHeader(http.StatusFound) }

// TestRenewedCookieAfterInformational: a cookie the door set before
// forwarding goes out with the final answer, not with a 1xx answer before
// it (browsers ignore Set-Cookie there), on both forwarding paths.
func TestRenewedCookieAfterInformational(t *testing.T) {
	be := newRawBackend(t, func(r *http.Request, _, _ int) rawAnswer {
		final := "HTTP/1.1 200 OK\r\nSet-Cookie: app=1\r\nContent-Length: 4\r\n\r\npage"
		switch r.URL.Path {
		case "/hints":
			return rawAnswer{resp: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + final}
		case "/continue":
			return rawAnswer{resp: "HTTP/1.1 100 Continue\r\n\r\n" + final}
		case "/down":
			return rawAnswer{resp: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", hangUp: true}
		}
		return rawAnswer{resp: final}
	})
	cfg := parseConfig(t, `
domain = "example.com"
route "photos" {
  backend = "`+be.url+`"
  cloudflare {
    host   = "photos"
    access = "family"
  }
}
`)
	for _, reverseProxyOnly := range []bool{false, true} {
		gw := startDiffGateway(t, fmt.Sprintf("reverse-proxy-only=%v", reverseProxyOnly), cfg, reverseProxyOnly)
		gw.gw.SetSignIn(renewingSignIn{})
		for _, c := range []struct {
			path   string
			infos  int
			status int
			cookie []string
		}{
			{"/plain", 0, 200, []string{renewedCookie, "app=1"}},
			{"/hints", 1, 200, []string{renewedCookie, "app=1"}},
			{"/continue", 1, 200, []string{renewedCookie, "app=1"}},
			// No answer: the error page still renews the session.
			{"/down", 1, http.StatusBadGateway, []string{renewedCookie}},
		} {
			t.Run(fmt.Sprintf("%s%s", gw.name, c.path), func(t *testing.T) {
				resp := exchange(t, gw.cf, "GET", rawRequestTo("photos.example.com", "GET", c.path))
				if len(resp.Informational) != c.infos || resp.Status != c.status {
					t.Fatalf("client got 1xx %q, then %d; want %d 1xx, then %d", resp.Informational, resp.Status, c.infos, c.status)
				}
				for _, info := range resp.Informational {
					if strings.Contains(info, "Set-Cookie") {
						t.Errorf("a 1xx answer carries the cookie: %q", info)
					}
				}
				if got := resp.Header["Set-Cookie"]; !slices.Equal(got, c.cookie) {
					t.Errorf("final answer's Set-Cookie %q, want %q", got, c.cookie)
				}
			})
		}
	}
}
