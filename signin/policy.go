package signin

// Policy: what is allowed, decided without I/O so each rule is testable on
// its own. Nothing here reads a file, a clock or the network.

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"gatehouse/auth"
	"gatehouse/routes"
)

// maxReturnLen bounds the return address kept through a sign-in.
const maxReturnLen = 2048

// ErrBadReturn is the answer for a return address that is not on a host in
// the route table.
var ErrBadReturn = errors.New("the return address is not on one of this server's sites")

// ReturnURL decides where a browser may be sent after signing in. raw is
// what the client asked for: a path on the current host ("/albums?x=1") or
// an absolute https URL. current is the host the request came to (a host
// in the table, maybe with a port); allowed reports whether a bare host name
// is a family host in the route table.
//
// The answer is always an absolute https URL on an allowed host, so a
// browser can never read it as a different authority. Anything a browser or
// a URL parser could read two ways is refused rather than repaired: the
// classic open-redirect tricks (`//evil.com`, `/\evil.com`, `/%09/evil.com`,
// `https:evil.com`, `/.evil.com`, userinfo `@`, `evilexample.com`) all fail.
func ReturnURL(raw, current string, allowed func(host string) bool) (string, error) {
	if raw == "" {
		raw = "/"
	}
	if len(raw) > maxReturnLen || !cleanChars(raw) {
		return "", ErrBadReturn
	}
	if strings.HasPrefix(raw, "/") {
		// A path on this host. Refuse "//host", "/\host" and "/." (a
		// relative-path trick against parsers that glue host and path),
		// also once percent-decoded with the characters browsers drop
		// (tab, newline) removed: "/%09/evil.com", "/%2F/evil.com",
		// "/%5Cevil.com".
		dec, err := url.PathUnescape(raw)
		if err != nil || strings.ContainsRune(dec, '\\') {
			return "", ErrBadReturn
		}
		for _, s := range []string{raw, dropBlank(dec)} {
			if len(s) > 1 && (s[1] == '/' || s[1] == '\\' || s[1] == '.') {
				return "", ErrBadReturn
			}
		}
		if !allowed(routes.NormalizeHost(current)) {
			return "", ErrBadReturn
		}
		return "https://" + strings.ToLower(current) + raw, nil
	}
	// Only a full https URL is taken; "https:evil.com", "HTTPS:/x" and
	// scheme-relative forms are not.
	if len(raw) < 8 || !strings.EqualFold(raw[:8], "https://") {
		return "", ErrBadReturn
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Opaque != "" || u.User != nil || u.Host == "" {
		return "", ErrBadReturn
	}
	host := strings.ToLower(u.Hostname())
	if host != routes.NormalizeHost(host) || !allowed(host) {
		return "", ErrBadReturn
	}
	authority := host
	if p := u.Port(); p != "" {
		if p != "443" && !strings.EqualFold(host+":"+p, current) {
			return "", ErrBadReturn
		}
		authority += ":" + p
	}
	rest := u.EscapedPath()
	if rest == "" {
		rest = "/"
	}
	if len(rest) > 1 && (rest[1] == '/' || rest[1] == '\\') {
		// Keep it unambiguous even for a later relative use.
		return "", ErrBadReturn
	}
	if u.RawQuery != "" {
		rest += "?" + u.RawQuery
	}
	return "https://" + authority + rest, nil
}

// dropBlank removes what browsers strip from URLs before parsing them.
func dropBlank(s string) string {
	return strings.Map(func(r rune) rune {
		if r <= 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// cleanChars refuses control characters, spaces and backslashes, which
// browsers strip or turn into '/' before they resolve a URL.
func cleanChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// IsNavigation reports whether a request is a browser's top-level
// navigation that may be sent to sign in: a GET or HEAD page load
// (auth.BrowserNavigation). Anything else (fetch/XHR, Accept:
// application/json, a non-GET, an image) gets 401 JSON instead of a
// redirect it could not follow.
func IsNavigation(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && auth.BrowserNavigation(r)
}

// identity is who a verified token says the user is.
type identity struct {
	Subject  string
	Email    string
	Name     string
	Username string
	SID      string // the provider's session (Keycloak "sid")
	Groups   []string
}

// Limits on what a token may put into a session, so a cookie stays under
// header limits and memory stays bounded.
const (
	maxGroups   = 500
	maxGroupLen = 200
	maxClaimLen = 320
)

var (
	errNoSubject = errors.New("the provider's ID token has no subject")
	errBadEmail  = errors.New("the email address in the provider's token is not a single valid address")
)

// identityFrom maps verified claims to an identity: the subject, the email
// (only a single, verified address; two '@' are refused outright), display
// names, the provider session id, and groups read from the configured claim
// paths of the ID token and of the access token.
func identityFrom(idClaims, accessClaims map[string]any, cfg *routes.OIDCConfig) (identity, error) {
	var id identity
	id.Subject = claimString(idClaims, "sub")
	if id.Subject == "" || len(id.Subject) > maxClaimLen {
		return id, errNoSubject
	}
	if email := claimString(idClaims, "email"); email != "" {
		if err := CheckEmail(email); err != nil {
			return id, err
		}
		// An address the provider has not verified is not passed on as
		// anyone's identity.
		if v, ok := idClaims["email_verified"].(bool); !ok || v {
			id.Email = email
		}
	}
	id.Name = limitString(claimString(idClaims, "name"))
	id.Username = limitString(claimString(idClaims, "preferred_username"))
	id.SID = claimString(idClaims, "sid")
	if id.SID == "" {
		id.SID = claimString(idClaims, "session_state") // older Keycloak
	}
	id.SID = limitString(id.SID)
	id.Groups = GroupsFromClaims(idClaims, cfg.GroupsFromIDToken)
	if accessClaims != nil {
		id.Groups = appendGroups(id.Groups, GroupsFromClaims(accessClaims, cfg.GroupsFromAccessToken))
	}
	return id, nil
}

// CheckEmail accepts one plain address: exactly one '@' with something on
// both sides, no spaces, quotes, angle brackets or control characters. A
// second '@' is how a crafted address claims someone else's domain.
func CheckEmail(email string) error {
	if len(email) > maxClaimLen || strings.Count(email, "@") != 1 {
		return errBadEmail
	}
	local, domain, _ := strings.Cut(email, "@")
	if local == "" || domain == "" || !strings.Contains(domain, ".") ||
		strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return errBadEmail
	}
	for i := 0; i < len(email); i++ {
		if c := email[i]; c <= 0x20 || c == 0x7f || strings.IndexByte(`"<>(),;:\[]`, c) >= 0 {
			return errBadEmail
		}
	}
	return nil
}

// GroupsFromClaims reads the string values at each dotted claim path
// ("groups", "realm_access.roles", "resource_access.gatehouse.roles"). A
// path may end in a list of strings or a single string; anything else
// contributes nothing. Keycloak's groups claim holds full paths like
// "/family" when the mapper's "Full group path" is on.
func GroupsFromClaims(claims map[string]any, paths []string) []string {
	var out []string
	for _, p := range paths {
		var v any = claims
		for _, seg := range strings.Split(p, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = m[seg]
		}
		switch x := v.(type) {
		case string:
			out = appendGroups(out, []string{x})
		case []any:
			for _, e := range x {
				if s, ok := e.(string); ok {
					out = appendGroups(out, []string{s})
				}
			}
		case []string:
			out = appendGroups(out, x)
		}
	}
	return out
}

func appendGroups(dst, src []string) []string {
	for _, g := range src {
		if g == "" || len(g) > maxGroupLen || len(dst) >= maxGroups {
			continue
		}
		dup := false
		for _, have := range dst {
			if have == g {
				dup = true
				break
			}
		}
		if !dup {
			dst = append(dst, g)
		}
	}
	return dst
}

func claimString(c map[string]any, name string) string {
	s, _ := c[name].(string)
	return s
}

func limitString(s string) string {
	if len(s) > maxClaimLen {
		return ""
	}
	return s
}

// verdict is what a session cookie is worth right now.
type verdict uint8

const (
	sessionValid   verdict = iota
	sessionRefresh         // valid, but due for a check with the provider
	sessionOver            // expired or revoked: sign in again
)

// judge applies the session rules: a session ends at its absolute expiry or
// when revoked (logout, back-channel logout); it is re-checked with the
// provider once refreshEvery has passed since the last check, which bounds
// how long a user disabled at the provider keeps access.
func judge(s *session, now time.Time, refreshEvery time.Duration, revoked bool) verdict {
	switch {
	case revoked, !now.Before(time.Unix(0, s.Expires)):
		return sessionOver
	case now.Sub(time.Unix(0, s.Checked)) >= refreshEvery, now.Before(time.Unix(0, s.Checked).Add(-5 * time.Minute)):
		// Also re-check a session whose last check lies in the future
		// (the clock went back): its age cannot be trusted.
		return sessionRefresh
	}
	return sessionValid
}

// withinGrace reports whether a session may keep working while the
// provider cannot be asked about it: its last confirmation is less than
// grace ago. Neither a disabled user nor a provider-side logout can reach
// gatehouse meanwhile, so grace bounds how long either goes unnoticed
// (grace 0: never). A last check in the future (the clock went back) is
// not trusted.
func withinGrace(s *session, now time.Time, grace time.Duration) bool {
	checked := time.Unix(0, s.Checked)
	return grace > 0 && now.Before(checked.Add(grace)) && !checked.After(now.Add(5*time.Minute))
}

// cookieNames are the names of gatehouse's own cookies.
type cookieNames struct {
	session string // chunks are session, session-1, session-2, …
	tokens  string // the tokens cookie (Path=/.gatehouse/), chunked the same way
	domain  string // Domain attribute of both; "" host-only
}

// tokensCookie names the cookie of a session's tokens. It is scoped to
// tokensPath, and __Host- requires Path=/, so it is __Secure-: with or
// without a cookie domain. A copy planted by another subdomain does not
// open: it is sealed and bound to its session's id.
const tokensCookie = "__Secure-gatehouse-tokens"

// tokensPath is the tokens cookie's Path: browsers send it to gatehouse's
// own endpoints only, never with the requests a backend answers.
const tokensPath = "/.gatehouse/"

// namesFor picks the session cookie's name and scope. With a cookie domain
// it is __Secure-gatehouse on that domain (one sign-in for every family
// host under it); without, __Host-gatehouse, bound to one host, which no
// other subdomain can set or overwrite. The tokens cookie has the same
// Domain rule.
func namesFor(cookieDomain string) cookieNames {
	if cookieDomain != "" {
		return cookieNames{session: "__Secure-gatehouse", tokens: tokensCookie, domain: cookieDomain}
	}
	return cookieNames{session: "__Host-gatehouse", tokens: tokensCookie}
}

// flowCookiePrefix names the short-lived cookie that carries one sign-in's
// state, nonce and PKCE verifier; it is host-only (__Host-) so only the
// host that began the sign-in can finish it.
const flowCookiePrefix = "__Host-gatehouse-flow-"

// flowCookieName is per sign-in, so two tabs signing in at once do not
// overwrite each other's state.
func flowCookieName(state string) string {
	if len(state) > 16 {
		state = state[:16]
	}
	return flowCookiePrefix + state
}

// sameOrigin reports whether a state-changing request (logout, the
// devices page) comes from a page of the same host. Fetch metadata, which
// the browser sets and no page can forge, decides when it is there:
// "same-origin", or "none" (the user's own action: a bookmark, a typed
// address). Only without it is the Origin header weighed; a browser sends
// "Origin: null" for a page whose referrer policy withholds the origin,
// so Origin alone cannot be the rule for current browsers.
func sameOrigin(r *http.Request, host string) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	if o := r.Header.Get("Origin"); o != "" && !strings.EqualFold(o, "https://"+host) {
		return false
	}
	return true
}
