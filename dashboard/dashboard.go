// Package dashboard is the admin dashboard: one HTML page on the tailnet
// shared node's own name (https://<tailnet.hostname>.<tailnet>/), for
// tailnet admins only, that shows the accessibility matrix with each
// route's backend health, recent refusals and reloads, bans, device
// tokens, tailnet nodes and the gateway's counts, and takes two actions
// (unban, revoke a device token) as same-origin POSTs with a CSRF token.
// It is never reachable through another door: only the shared node's
// handler hands requests to it (server/dashboard.go).
package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"gatehouse/auth"
	"gatehouse/devices"
	"gatehouse/health"
	"gatehouse/metrics"
	"gatehouse/ratelimit"
	"gatehouse/routes"
	"gatehouse/signin"
)

// DeviceTokens is family sign-in as the dashboard needs it
// (signin.SignIn implements it).
type DeviceTokens interface {
	DeviceTokensList() ([]signin.DeviceToken, error)
	RevokeDevice(ctx context.Context, id, by string) (devices.Token, error)
}

// Node is one tailnet node.
type Node struct {
	Name       string
	PerRoute   bool
	State      string
	DNSName    string
	Addresses  []netip.Addr
	CertExpiry time.Time
	LastError  string
}

// Options are where the dashboard reads the running gateway.
type Options struct {
	Log      *slog.Logger
	Table    func() *routes.Table
	Health   *health.Checker
	Refusals *Refusals
	Reloads  *Reloads
	Limits   *ratelimit.Registry // nil: no bans to show
	// Devices returns family sign-in's device tokens, nil while there is
	// no family sign-in.
	Devices func() DeviceTokens
	Nodes   func() []Node
	Metrics *metrics.Metrics
	Started time.Time
	Version string
}

// Dashboard serves the page and its actions.
type Dashboard struct {
	opt     Options
	csrfKey []byte
}

// New returns the dashboard.
func New(opt Options) *Dashboard {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &Dashboard{opt: opt, csrfKey: key}
}

// Serves reports whether host is the dashboard's: the shared node's own
// name (its first DNS label is tailnet.hostname), unless a route of the
// shared node already answers on it.
func (d *Dashboard) Serves(host string) bool {
	t := d.opt.Table()
	tc := t.Config.Tailnet
	if tc == nil {
		return false
	}
	h := routes.NormalizeHost(host)
	if i := strings.IndexByte(h, '.'); i >= 0 {
		h = h[:i]
	}
	return h == tc.Hostname && !t.HasHost(routes.Tailnet, tc.Hostname)
}

// Wrap serves the dashboard on its host and hands every other request to
// next (the shared node's door).
func (d *Dashboard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !d.Serves(r.Host) {
			next.ServeHTTP(w, r)
			return
		}
		d.ServeHTTP(w, r)
	})
}

// admin is the tailnet admin asking, nil if the peer is not one.
func (d *Dashboard) admin(r *http.Request) (*auth.TailnetPeer, bool) {
	peers := auth.PeerLookupFrom(r.Context())
	if peers == nil {
		return nil, false
	}
	rec, err := peers.LookupPeer(r.Context())
	if err != nil {
		d.opt.Log.Warn("dashboard: tailnet identity unknown; refused", "err", err)
		return nil, false
	}
	tc := d.opt.Table().Config.Tailnet
	if tc == nil {
		return nil, false
	}
	p := auth.NewAdminSet(tc.Admins, tc.AdminCapability).Peer(rec)
	if (auth.Policy{}).Decide(routes.Admin, auth.Identity{Tailnet: p}, nil) != auth.Allow {
		return p, false
	}
	return p, true
}

func adminName(p *auth.TailnetPeer) string {
	s := who(auth.Identity{Tailnet: p})
	return strings.TrimPrefix(s, "tailnet: ")
}

func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "same-origin")
	p, ok := d.admin(r)
	if !ok {
		who := "an unknown device"
		if p != nil {
			who = adminName(p)
		}
		d.opt.Log.Info("dashboard refused", "who", who, "client", r.RemoteAddr)
		writeText(w, http.StatusForbidden, "Not allowed",
			"The gatehouse dashboard is for administrators. You are seen as "+who+
				". The administrator adds your login (or your device's tag) to tailnet.admins in routes.hcl to let you in.")
		return
	}
	switch {
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		d.page(w, r, p, "")
	case r.URL.Path == "/unban" || r.URL.Path == "/revoke":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeText(w, http.StatusMethodNotAllowed, "Method not allowed", "This address takes only POST.")
			return
		}
		d.action(w, r, p)
	default:
		writeText(w, http.StatusNotFound, "Not found", "The dashboard has only its main page.")
	}
}

// csrfToken binds a form to the admin it was shown to.
func (d *Dashboard) csrfToken(p *auth.TailnetPeer) string {
	m := hmac.New(sha256.New, d.csrfKey)
	m.Write([]byte(p.Login + "\x00" + p.Name))
	return hex.EncodeToString(m.Sum(nil))
}

// sameOrigin is signin/policy.go's rule for the dashboard's host: fetch
// metadata decides when the browser sends it, else the Origin header.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	if o := r.Header.Get("Origin"); o != "" {
		host, ok := strings.CutPrefix(o, "https://")
		if !ok {
			host, ok = strings.CutPrefix(o, "http://")
		}
		return ok && strings.EqualFold(host, r.Host)
	}
	return false
}

var errCSRF = errors.New("cross-site or stale form")

func (d *Dashboard) action(w http.ResponseWriter, r *http.Request, p *auth.TailnetPeer) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		writeText(w, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	admin := adminName(p)
	if !sameOrigin(r) || !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(d.csrfToken(p))) {
		d.opt.Log.Warn("dashboard action refused", "admin", admin, "action", r.URL.Path, "err", errCSRF)
		writeText(w, http.StatusForbidden, "Not allowed", "This form did not come from the dashboard's own page; reload the dashboard and try again.")
		return
	}
	var notice string
	switch r.URL.Path {
	case "/unban":
		scope, client := r.PostForm.Get("scope"), r.PostForm.Get("client")
		if d.opt.Limits != nil && d.opt.Limits.Unban(scope, client, time.Now()) {
			d.opt.Log.Info("client unbanned by an admin", "admin", admin, "scope", scope, "client", client)
			notice = "Unbanned " + client + "."
		} else {
			notice = "No such ban (it may have ended)."
		}
	case "/revoke":
		id := r.PostForm.Get("id")
		var dt DeviceTokens
		if d.opt.Devices != nil {
			dt = d.opt.Devices()
		}
		if dt == nil {
			notice = "Family sign-in is off; there are no device tokens."
			break
		}
		t, err := dt.RevokeDevice(r.Context(), id, admin)
		switch {
		case errors.Is(err, devices.ErrNotFound):
			notice = "No such device token (it may be revoked already)."
		case err != nil:
			d.opt.Log.Error("device token not revoked", "admin", admin, "id", id, "err", err)
			notice = "The device token could not be revoked: " + err.Error()
		default:
			notice = "Revoked " + t.Name + " of " + t.Email + "."
		}
	}
	d.page(w, r, p, notice)
}
