package proxy

// Helpers of the stage tests: each stage of the door runs on a visit built
// here, against a recorder, without a server or a backend.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"gatehouse/auth"
	"gatehouse/ratelimit"
	"gatehouse/routes"
)

// stageConfig has a route of every access level on the doors a stage test
// needs; backends are never dialled.
const stageConfig = `
domain = "example.com"
cloudflare {
  trusted_proxies = ["127.0.0.1/32"]
}
oidc {
  issuer             = "https://auth.example.com/realms/home"
  client_id          = "gatehouse"
  client_secret_file = "secret"
  cookie_key_file    = "state/cookie.keys"
}
tailnet {
  admins = ["admin@example.com", "tag:ops"]
}
route "app" {
  backend  = "http://127.0.0.1:9"
  max_body = "1000"
  cloudflare {
    host   = "app"
    access = "app"
  }
  limit {
    rate  = "1/min"
    burst = 2
  }
  path "/login" {
    limit {
      rate  = "1/min"
      burst = 3
    }
    ban {
      failures = 2
      window   = "15m"
      ban_time = "1h"
      statuses = [401]
    }
  }
  path "/login/sub" {
    cloudflare = "app"
  }
}
route "photos" {
  backend = "http://127.0.0.1:9"
  cloudflare {
    host             = "photos"
    access           = "family"
    identity_headers = ["X-Forwarded-Email", "Remote-User"]
  }
}
route "kids" {
  backend = "http://127.0.0.1:9"
  cloudflare {
    host   = "kids"
    access = "family"
    groups = ["kids"]
  }
}
route "radarr" {
  backend = "http://127.0.0.1:9"
  tailnet {
    access           = "admin"
    identity_headers = ["Tailscale-User-Login", "Tailscale-User-Name", "Remote-Name"]
  }
}
route "radicale" {
  backend = "http://127.0.0.1:9"
  tailnet {
    access = "members"
  }
}
`

// stageGateway is a gateway for stageConfig with limits on.
func stageGateway(t *testing.T) *Gateway {
	t.Helper()
	cfg, _, diags := routes.Parse([]byte(stageConfig), "stage.hcl")
	if diags.HasErrors() {
		t.Fatalf("routes.Parse: %s", diags.Error())
	}
	g := New(routes.Compile(cfg), Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Limits: ratelimit.NewRegistry(1000),
	})
	t.Cleanup(g.Close)
	return g
}

// stageVisit starts a visit of r on door d, matched as the door would
// match it, with a recorder for the answer.
func stageVisit(t *testing.T, g *Gateway, d routes.Door, r *http.Request) (*doorHandler, *visit, *httptest.ResponseRecorder) {
	t.Helper()
	h := g.Door(d).(*doorHandler)
	rec := httptest.NewRecorder()
	visit := h.begin(rec, r)
	v := &visit
	v.path = routes.CleanPath(r.URL.Path)
	v.m = h.match(v.st.table, r.Host, v.path)
	if v.m.Route != nil {
		v.routeName = v.m.Route.Name
	}
	return h, v, rec
}

// fakeSignIn stands in for the signin package.
type fakeSignIn struct {
	ready bool
	user  *auth.FamilyUser
	// cookie is set on the answer by Session, as a renewal does.
	cookie   string
	sessions int // Session calls
	begun    int // Begin calls
	stripped int // StripCookies calls
}

func (f *fakeSignIn) Ready() bool { return f.ready }

func (f *fakeSignIn) Session(w http.ResponseWriter, _ *http.Request) *auth.FamilyUser {
	f.sessions++
	if f.cookie != "" {
		w.Header().Add("Set-Cookie", f.cookie)
	}
	return f.user
}

func (f *fakeSignIn) StripCookies(h http.Header) {
	f.stripped++
	h.Del("Cookie")
}

func (f *fakeSignIn) ServeGatehouse(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != "/.gatehouse/logout" {
		return false
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}

func (f *fakeSignIn) Begin(w http.ResponseWriter, _ *http.Request) {
	f.begun++
	w.Header().Set("Location", "/.gatehouse/login")
	w.WriteHeader(http.StatusFound)
}

// fakeDevices is a sign-in that also takes device tokens: "good" stands
// for its user, anything else is refused with 401.
type fakeDevices struct {
	fakeSignIn
	deviceUser *auth.FamilyUser
	client     netip.Addr // the client address Device was given
}

func (f *fakeDevices) Device(w http.ResponseWriter, _ *http.Request, token string, client netip.Addr) (*auth.FamilyUser, bool) {
	f.client = client
	if token != "good" {
		w.WriteHeader(http.StatusUnauthorized)
		return nil, false
	}
	return f.deviceUser, true
}

// fakeWhoIs answers the connection's peer lookup with res, or fails with err.
type fakeWhoIs struct {
	res *auth.PeerRecord
	err error
}

func (f fakeWhoIs) LookupPeer(context.Context) (*auth.PeerRecord, error) {
	return f.res, f.err
}

// peer is the record of a device of login, or of a tagged one.
func peer(login string, tags ...string) *auth.PeerRecord {
	return &auth.PeerRecord{Device: "laptop", Tags: tags, Login: login}
}

// overTailnet attaches a connection's peer lookup, as the tailnet door does.
func overTailnet(r *http.Request, w auth.PeerLookup) *http.Request {
	return r.WithContext(auth.WithPeerLookup(r.Context(), w))
}

var errWhoIsDown = errors.New("tailscaled not answering")
