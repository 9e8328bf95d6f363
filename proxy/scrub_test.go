package proxy

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"gatehouse/routes"
)

// TestScrub: forwarding headers count only from a trusted proxy on the
// Cloudflare door and never on the tailnet, the device token is taken out
// in every spelling, and no identity header survives.
func TestScrub(t *testing.T) {
	g := stageGateway(t)
	cases := []struct {
		name       string
		door       routes.Door
		remote     string
		tls        bool
		header     http.Header
		client     string
		proto      string
		token      string
		keptHeader string // a header that is nobody's identity stays
	}{
		{name: "untrusted peer", door: routes.Cloudflare, remote: "192.0.2.1:5000",
			header: http.Header{"Cf-Connecting-Ip": {"203.0.113.7"}, "X-Forwarded-Proto": {"http"}},
			client: "192.0.2.1", proto: "https"},
		{name: "trusted proxy, CF-Connecting-IP", door: routes.Cloudflare, remote: "127.0.0.1:5000",
			header: http.Header{"Cf-Connecting-Ip": {"203.0.113.7"}, "X-Forwarded-Proto": {"http"}},
			client: "203.0.113.7", proto: "http"},
		{name: "trusted proxy, X-Forwarded-For", door: routes.Cloudflare, remote: "127.0.0.1:5000",
			header: http.Header{"X-Forwarded-For": {"198.51.100.9, 203.0.113.7, 127.0.0.1"}},
			client: "203.0.113.7", proto: "https"},
		{name: "tailnet: nobody forwards", door: routes.Tailnet, remote: "127.0.0.1:5000",
			header: http.Header{"Cf-Connecting-Ip": {"203.0.113.7"}, "X-Forwarded-Proto": {"https"}},
			client: "127.0.0.1", proto: "http"},
		{name: "tailnet over TLS", door: routes.Tailnet, remote: "100.64.0.2:5000", tls: true,
			client: "100.64.0.2", proto: "https"},
		{name: "device token and identities", door: routes.Cloudflare, remote: "192.0.2.1:5000",
			header: http.Header{"X-Gatehouse-Token": {"tok"}, "X_gatehouse_token": {"other"}, "Remote-User": {"admin"},
				"Tailscale_User_Login": {"admin@example.com"}, "X-Original-Url": {"/admin"}, "Accept": {"*/*"}},
			client: "192.0.2.1", proto: "https", token: "tok", keptHeader: "Accept"},
		{name: "device token off the Cloudflare door too", door: routes.Tailnet, remote: "100.64.0.2:5000",
			header: http.Header{"X-Gatehouse-Token": {"tok"}}, client: "100.64.0.2", proto: "http", token: "tok"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://app.example.com/", nil)
			r.RemoteAddr = c.remote
			if c.tls {
				r.TLS = &tls.ConnectionState{}
			}
			r.Header = c.header.Clone()
			if r.Header == nil {
				r.Header = http.Header{}
			}
			h := g.Door(c.door).(*doorHandler)
			fwd, token := h.scrub(r, g.Table().Config)
			if fwd.client.String() != c.client || fwd.proto != c.proto {
				t.Errorf("client %s over %s, want %s over %s", fwd.client, fwd.proto, c.client, c.proto)
			}
			if token != c.token {
				t.Errorf("device token %q, want %q", token, c.token)
			}
			for k := range r.Header {
				if k != c.keptHeader {
					t.Errorf("%s left on the request", k)
				}
			}
			if c.keptHeader != "" && r.Header.Get(c.keptHeader) == "" {
				t.Errorf("%s removed", c.keptHeader)
			}
		})
	}
}
