// Package routes reads routes.hcl, validates it with diagnostics that name
// file, line and column, and compiles it into an immutable Table that the
// doors consult on every request.
package routes

import (
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Door is an entrance to gatehouse. Each door knows a different kind of
// identity, so the same route can carry a different access level per door.
type Door uint8

const (
	// Tailnet is the embedded Tailscale node: peers have a WhoIs identity.
	Tailnet Door = iota
	// Cloudflare is the loopback listener cloudflared forwards to: clients
	// are anonymous until they sign in.
	Cloudflare
	// LAN is the HTTPS listener on the home network, answering the
	// Cloudflare door's public hostnames with a certificate of its own:
	// clients are anonymous until they sign in, as through Cloudflare.
	LAN
	numDoors
)

// Doors lists every door in display order.
var Doors = [numDoors]Door{Tailnet, Cloudflare, LAN}

func (d Door) String() string {
	switch d {
	case Tailnet:
		return "tailnet"
	case Cloudflare:
		return "cloudflare"
	case LAN:
		return "lan"
	}
	return "unknown"
}

// Access is what a request must prove to pass a door into a route.
type Access uint8

const (
	// Closed: the route (or path) does not exist on this door.
	Closed Access = iota
	// App: no gateway sign-in; the application's own login protects it.
	App
	// Family: signed in through OIDC (optionally in a group).
	Family
	// Members: any user identity on the tailnet.
	Members
	// Admin: a tailnet identity in the admin set.
	Admin
)

var accessNames = [...]string{Closed: "closed", App: "app", Family: "family", Members: "members", Admin: "admin"}

func (a Access) String() string {
	if int(a) < len(accessNames) {
		return accessNames[a]
	}
	return "unknown"
}

// ParseAccess maps a routes.hcl access keyword to its Access.
func ParseAccess(s string) (Access, bool) {
	for i, n := range accessNames {
		if n == s {
			return Access(i), true
		}
	}
	return Closed, false
}

// Config is a fully validated routes.hcl.
type Config struct {
	File   string
	Domain string

	Cloudflare CloudflareConfig
	Tailnet    *TailnetConfig // nil: the tailnet door is off
	LAN        *LANConfig     // nil: the LAN door is off
	OIDC       *OIDCConfig    // nil: family routes fail closed
	Metrics    *MetricsConfig // nil: no metrics listener
	Limit      *Limit         // default limit for every route; nil: none
	Server     ServerConfig

	Routes []*Route

	// Warnings are diagnostics that do not stop the config from loading.
	Warnings hcl.Diagnostics
	// Acknowledged counts the warnings the file's acknowledge list silenced.
	Acknowledged int
}

// CloudflareConfig is the door cloudflared forwards to.
type CloudflareConfig struct {
	Listen      string
	ListenRange hcl.Range
	// TrustedProxies are the peers whose CF-Connecting-IP and
	// X-Forwarded-For headers are believed.
	TrustedProxies []netip.Prefix
}

// LANConfig is the HTTPS door on the home network.
type LANConfig struct {
	// Listen are the HTTPS addresses (host:port); RedirectListen the
	// plain-HTTP ones, which only redirect to HTTPS.
	Listen         []string
	RedirectListen []string
	ListenRange    hcl.Range
	RedirectRange  hcl.Range
	// Networks are the client networks the door accepts connections from;
	// any other client is refused before TLS.
	Networks []netip.Prefix
	// StateDir holds the certificates and the ACME account (absolute).
	StateDir string
	// ACMECA is the ACME directory URL; ACMEEmail the account's contact.
	ACMECA    string
	ACMEEmail string
	// DNSTokenFile holds the API token of Cloudflare's DNS API, which
	// answers the DNS-01 challenge (absolute).
	DNSTokenFile string
	// Wildcard: one certificate for *.<domain> (and <domain> when a route
	// uses it); false: one certificate per host.
	Wildcard bool
	Range    hcl.Range
}

// The ACME directories lan.acme_ca names by keyword.
const (
	LetsEncrypt        = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// ServerConfig holds the HTTP server and upstream transport settings shared
// by every door.
type ServerConfig struct {
	ReadHeaderTimeout   time.Duration
	IdleTimeout         time.Duration
	MaxHeaderBytes      int
	StallTimeout        time.Duration // no-progress deadline on bodies
	UpstreamIdleTimeout time.Duration
	ShutdownTimeout     time.Duration
	// ResponseTimeout bounds the wait for a backend's response headers
	// after the request was sent; a route may set its own.
	ResponseTimeout time.Duration
}

// TailnetConfig is the embedded Tailscale node.
type TailnetConfig struct {
	Hostname         string
	StateDir         string // absolute: relative paths are taken from the config file's directory
	AuthKeyFile      string
	ClientSecretFile string
	ControlURL       string
	Ephemeral        bool
	Tags             []string
	Admins           []string
	AdminCapability  string
	LogUpload        bool // upload tailscaled logs to Tailscale's log service
	Verbose          bool // tsnet's own logs at info instead of debug
	Range            hcl.Range
}

// OIDCConfig is the family sign-in provider (Keycloak or any OpenID
// Provider). The signin package implements it.
type OIDCConfig struct {
	Issuer           string
	ClientID         string
	ClientSecretFile string // absolute
	Scopes           []string
	// CookieDomain, when set, is the parent domain the session cookie is
	// scoped to, so one sign-in covers every family host under it; empty:
	// one sign-in per host (host-only __Host- cookie).
	CookieDomain      string
	CookieDomainRange hcl.Range
	// GroupsFromIDToken and GroupsFromAccessToken are dotted claim paths
	// ("groups", "realm_access.roles", "resource_access.<client>.roles")
	// whose string values are the user's groups, read from the ID token
	// and from the (JWT) access token.
	GroupsFromIDToken     []string
	GroupsFromAccessToken []string
	// SessionLifetime is the longest a gateway session lasts before the
	// user signs in again.
	SessionLifetime time.Duration
	// RefreshInterval is how often a session is re-checked with the
	// provider (refresh token grant): the bound within which a user
	// disabled at the provider loses access.
	RefreshInterval time.Duration
	// OutageGrace is how long after its last renewal a session keeps
	// working while the provider is unreachable; 0: family routes answer
	// 503 to every session during an outage.
	OutageGrace time.Duration
	// DeviceRefreshInterval is how often each device token owner's offline
	// token is renewed with the provider: the bound within which tokens of
	// an account disabled or deleted at the provider stop.
	DeviceRefreshInterval time.Duration
	// CookieKeyFile holds the cookie keys (absolute); created if absent.
	CookieKeyFile string
	// DeviceTokenFile holds the device tokens (hashed), beside the cookie
	// key file: <dir of CookieKeyFile>/devices.json (absolute).
	DeviceTokenFile string
	// DeviceTokenHeader is the request header phone and TV apps send their
	// device token in (canonical form); default X-Gatehouse-Token.
	DeviceTokenHeader string
	// PortalHost, when set, is a Cloudflare host that shows the family
	// portal (the portal is at /.gatehouse/ on every family host too).
	PortalHost      string
	PortalHostRange hcl.Range
	Range           hcl.Range
}

// MetricsConfig is the Prometheus listener, never reachable through a door.
type MetricsConfig struct {
	Listen      string
	ListenRange hcl.Range
}

// Limit is a rate limit block. Unset fields (zero) inherit from the
// enclosing limit: path → route → top level.
type Limit struct {
	Rate       float64 // per client, requests per second
	Burst      int     // per client
	TotalRate  float64 // all clients of the route together
	TotalBurst int
	Concurrent int // requests one client may have running at once
	MaxClients int // top level only: clients tracked before the oldest are evicted
	Range      hcl.Range
}

// Ban bans a client from a route after repeated failures on a login path.
type Ban struct {
	Failures int
	Window   time.Duration
	BanFor   time.Duration
	Statuses []int
	Range    hcl.Range
}

// Backend is where a route's requests go.
type Backend struct {
	// URL is the upstream base URL. For unix sockets it is http://<route>.sock
	// and Socket names the socket file.
	URL    *url.URL
	Socket string
	Raw    string
}

// DoorRule is a route's presence on one door.
type DoorRule struct {
	Host   string // lower-case, fully qualified for cloudflare; node name for tailnet
	Access Access
	Groups []string // family: OIDC groups of which the user needs one
	// Node (tailnet): the route gets a tailnet node of its own named Host,
	// with its own MagicDNS name and certificate.
	Node bool
	// IdentityHeaders are sent to the backend with the identity the door
	// verified (tailnet: the peer's WhoIs; cloudflare: the family session or
	// device token), after any client-sent copies are removed.
	IdentityHeaders []string
	// MaxBody (lan) overrides the route's max_body on this door; 0: the
	// route's.
	MaxBody int64
	Range   hcl.Range
	// HostRange is where the host is written: the `host =` attribute, or
	// the door block when the host defaults to the route's name.
	HostRange hcl.Range
}

// PathRule refines a route's access below a path prefix.
type PathRule struct {
	Prefix string // cleaned, no trailing slash
	Label  string // as written in the file
	// Access per door; nil inherits the door's access.
	Access [numDoors]*Access
	Limit  *Limit
	Ban    *Ban
	Range  hcl.Range
	// Preset names the preset this rule came from (routes/presets.go);
	// "" for a rule written in the file.
	Preset string
}

// Route is one service behind gatehouse.
type Route struct {
	Name             string
	Backend          Backend
	AllowNonLoopback bool
	Doors            [numDoors]*DoorRule // nil: closed on that door
	Paths            []*PathRule
	Limit            *Limit
	MaxBody          int64    // 0: unlimited
	Presets          []string // the presets that added path rules, in file order
	// ResponseTimeout overrides the server block's; 0: that one.
	ResponseTimeout time.Duration
	// Description and Icon show the route on the family portal and the
	// admin dashboard; Icon is a short text (an emoji) or an image address.
	Description string
	Icon        string
	// Health is the check gatehouse runs against the backend on its own.
	Health HealthCheck
	Range  hcl.Range
}

// HealthCheck is a route's backend check: a TCP connect, or a GET of Path
// when set, every Interval, each given Timeout.
type HealthCheck struct {
	Off      bool
	Path     string
	Interval time.Duration
	Timeout  time.Duration
	Range    hcl.Range
}

// IconIsImage reports whether the route's icon is an image address rather
// than a text.
func (r *Route) IconIsImage() bool {
	return strings.HasPrefix(r.Icon, "https://") || strings.HasPrefix(r.Icon, "http://") || strings.HasPrefix(r.Icon, "/")
}

// IdentityHeaderNames are the headers a tailnet route may ask gatehouse to
// send its backend with the peer's identity. All carry the tailnet login
// except the -Name ones (the display name).
var IdentityHeaderNames = map[string]bool{
	"Tailscale-User-Login": true,
	"Tailscale-User-Name":  true,
	"Remote-User":          true,
	"Remote-Name":          true,
	"X-Forwarded-User":     true,
	// Radicale's `[auth] type = http_x_remote_user` takes the user from
	// this header (Kozea/Radicale radicale/auth/http_x_remote_user.py reads
	// environ["HTTP_X_REMOTE_USER"]).
	"X-Remote-User": true,
}

// FamilyIdentityHeaderNames are the headers a cloudflare route may ask
// gatehouse to send its backend with the signed-in family member's
// identity (auth.FamilyUser.HeaderValue gives each one's value).
var FamilyIdentityHeaderNames = map[string]bool{
	"X-Forwarded-User":               true,
	"X-Forwarded-Email":              true,
	"X-Forwarded-Groups":             true,
	"X-Forwarded-Preferred-Username": true,
	"Remote-User":                    true,
	"Remote-Email":                   true,
	"Remote-Groups":                  true,
	"X-Remote-User":                  true, // Radicale, as on the tailnet door
}

// ResponseTimeoutIn is how long the route waits for its backend's response
// headers under the server settings sc.
func (r *Route) ResponseTimeoutIn(sc ServerConfig) time.Duration {
	if r.ResponseTimeout > 0 {
		return r.ResponseTimeout
	}
	return sc.ResponseTimeout
}

// MaxBodyOn is the largest request body the route takes through door d;
// 0: unlimited.
func (r *Route) MaxBodyOn(d Door) int64 {
	if dr := r.Doors[d]; dr != nil && dr.MaxBody > 0 {
		return dr.MaxBody
	}
	return r.MaxBody
}

// UsesAccess reports whether a on door d applies anywhere in the route:
// to the door as a whole or to one of its path rules.
func (r *Route) UsesAccess(d Door, a Access) bool {
	dr := r.Doors[d]
	if dr == nil {
		return false
	}
	if dr.Access == a {
		return true
	}
	for _, p := range r.Paths {
		if p.Access[d] != nil && *p.Access[d] == a {
			return true
		}
	}
	return false
}

// Opens reports whether the route lets anything through door d: the door
// as a whole, or a path rule below it, has an access level other than
// closed. A route closed on a door as a whole, with no path opened, does
// not exist there.
func (r *Route) Opens(d Door) bool {
	dr := r.Doors[d]
	if dr == nil {
		return false
	}
	if dr.Access != Closed {
		return true
	}
	for _, p := range r.Paths {
		if p.Access[d] != nil && *p.Access[d] != Closed {
			return true
		}
	}
	return false
}
