// Package signin is family sign-in: the OpenID Connect authorization code
// flow with PKCE against the household Keycloak (any OpenID Provider), for
// the Cloudflare door's family routes. It implements proxy.SignIn.
//
// Design, in short (docs/signin.md has the whole story):
//
//   - The flow. A browser navigation without a session is redirected to the
//     provider; state, nonce and the PKCE verifier travel in a sealed,
//     host-only __Host- cookie, one per sign-in. The callback lives at
//     /.gatehouse/callback on the family host where the sign-in began, so
//     that cookie never leaves the host and the return address is on it.
//     Anything that is not a navigation gets 401 JSON.
//   - Sessions are stateless sealed cookies (XChaCha20-Poly1305, keys from
//     the cookie key file, the first sealing and all opening), chunked when
//     large, scoped to cookie_domain (__Secure-) or one host (__Host-). The
//     session cookie, sent with every request, carries the identity only;
//     the refresh and ID token go in a tokens cookie bound to the session
//     id with Path=/.gatehouse/ (cookieheader.go reads the Cookie header
//     without Request.Cookies). Backends never see them (StripCookies).
//   - Renewal. A session older than refresh_interval since its last check is
//     renewed with the refresh token on its next request (singleflight per
//     session, plus a short cache for requests still carrying the old
//     cookie); a refusal ends it. That bounds how long a user disabled at the
//     provider keeps access. The tokens come from memory (tokenmemory.go);
//     after a restart a due request goes through /.gatehouse/renew, where
//     the tokens cookie is, and back (a WebSocket upgrade, which cannot
//     follow, gets 401).
//   - Ending sessions. Because cookies are self-contained, logout and
//     back-channel logout write to a bounded, in-memory revocation record
//     ("sessions of this sid/sub/id begun before T are over"), consulted on
//     every request and kept across reloads; overflow raises a floor that
//     signs people out rather than letting anyone back in.
//   - Availability. Discovery and health probes run in the background with
//     backoff; Ready is false while the provider is unreachable. New
//     sign-ins then answer 503, while a session the provider confirmed less
//     than outage_grace ago keeps working without renewal attempts
//     (docs/signin.md has the trade-off).
//   - Device tokens (devices.go). /.gatehouse/devices lets a signed-in
//     member make, list and revoke long-lived tokens for phone and TV apps
//     (same-origin POSTs with a session-bound form token). Device checks a
//     token sent in device_token_header against the devices package's
//     hashed file (re-read when it changes, so `gatehouse tokens revoke`
//     applies at once), rate-limits it, and returns the owner as they were when
//     the token was made; it needs no provider to answer. Each owner's tokens
//     are bound to their account (grants.go): an offline token, renewed on a
//     schedule, whose refusal ends them.
//   - Identity headers for backends are chosen per route (identity_headers)
//     and filled by the door from the FamilyUser this package returns.
//
// policy.go holds the rules (return addresses, navigation detection, claim
// mapping, email check, session verdicts, cookie names) without I/O.
package signin
