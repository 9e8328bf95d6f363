package proxy

import (
	"net/http"
	"net/netip"
	"strings"

	"gatehouse/routes"
)

// scrub is the first thing a door does with a request: the forwarding
// headers are weighed against the peer address, the device token is taken
// out, and then every header that could claim an identity, an address or
// a different path is gone, in every spelling, before anything else looks
// at the request (invariant 2, docs/ARCHITECTURE.md).
func (h *doorHandler) scrub(r *http.Request, cfg *routes.Config) (fwd forwarded, deviceToken string) {
	trusted, proto := cfg.Cloudflare.TrustedProxies, h.proto
	if h.door != routes.Cloudflare {
		// Tailnet peers and LAN clients connect directly: nobody
		// forwards for them, so the socket's address is the client's.
		trusted = nil
		if r.TLS != nil {
			proto = "https"
		}
	}
	fwd = readForwarded(r.RemoteAddr, r.Header, trusted, proto)
	// On every door, so it is never forwarded; only the Cloudflare door's
	// family routes use it.
	if o := cfg.OIDC; o != nil && o.DeviceTokenHeader != "" {
		deviceToken = takeHeader(r.Header, o.DeviceTokenHeader)
	}
	scrubHeaders(r.Header)
	return fwd, deviceToken
}

// Headers a client could send to claim an identity, an address or a
// different path. Names are compared after lower-casing and turning '_' and
// '.' into '-', because backends and their frameworks do the same (the
// lesson of GHSA-vjrc-mh2v-45x6, GHSA-5m6w-wvh7-57vm, GHSA-x677-9fxg-v5c5).
var (
	spoofableExact = map[string]bool{
		"forwarded":              true,
		"x-real-ip":              true,
		"cf-connecting-ip":       true,
		"cf-connecting-ipv6":     true,
		"true-client-ip":         true,
		"x-client-ip":            true,
		"x-cluster-client-ip":    true,
		"x-user":                 true,
		"x-email":                true,
		"x-username":             true,
		"x-user-email":           true,
		"x-authenticated-user":   true,
		"x-authenticated-email":  true,
		"x-authenticated-groups": true,
		"x-proxy-user":           true,
		"x-original-user":        true,
		"x-preferred-username":   true,
		// IIS-style path overrides: a backend that honours them would
		// serve a path other than the one gatehouse decided on.
		"x-original-url": true,
		"x-original-uri": true,
		"x-rewrite-url":  true,
	}
	spoofablePrefixes = []string{
		"tailscale-", "x-tailscale-", "x-forwarded-", "x-auth-request-", "x-webauth-",
		"x-authentik-", "x-gatehouse-", "remote-", "x-remote-", "cf-access-",
		"oidc-", "x-oidc-", "x-amzn-oidc-", "x-ms-client-principal",
	}
)

// isSpoofable reports whether a header name, in any spelling, is one that
// only gatehouse may set.
func isSpoofable(name string) bool {
	var buf [64]byte
	if len(name) > len(buf) {
		// No legitimate identity header is this long, but normalise the
		// prefix anyway so a padded name cannot slip past.
		name = name[:len(buf)]
	}
	n := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '_' || c == '.':
			c = '-'
		}
		n[i] = c
	}
	// Indexing with string(n) directly does not allocate.
	if spoofableExact[string(n)] {
		return true
	}
	for _, p := range spoofablePrefixes {
		if len(n) >= len(p) && string(n[:len(p)]) == p {
			return true
		}
	}
	return false
}

// forwarded is what a door believes about the client after weighing the
// forwarding headers against the peer address.
type forwarded struct {
	client netip.Addr
	proto  string
}

// readForwarded decides the client address and scheme. Headers are believed
// only from a trusted peer; otherwise the TCP peer is the client.
func readForwarded(remoteAddr string, h http.Header, trusted []netip.Prefix, defaultProto string) forwarded {
	f := forwarded{proto: defaultProto}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return f
	}
	f.client = ap.Addr().Unmap()
	if !inPrefixes(f.client, trusted) {
		return f
	}
	if v := h["Cf-Connecting-Ip"]; len(v) == 1 {
		if a, err := netip.ParseAddr(strings.TrimSpace(v[0])); err == nil {
			f.client = a.Unmap()
		}
	} else if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		// The right-most address that is not a trusted proxy is the
		// first one a trusted party vouches for.
		all := strings.Join(xff, ",")
		for all != "" {
			i := strings.LastIndexByte(all, ',')
			part := strings.TrimSpace(all[i+1:])
			all = all[:max(i, 0)]
			a, err := netip.ParseAddr(part)
			if err != nil {
				break
			}
			f.client = a.Unmap()
			if !inPrefixes(f.client, trusted) || i < 0 {
				break
			}
		}
	}
	if v := h.Get("X-Forwarded-Proto"); v == "http" || v == "https" {
		f.proto = v
	}
	return f
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// scrubHeaders removes every spoofable header in every spelling.
func scrubHeaders(h http.Header) {
	for k := range h {
		if isSpoofable(k) {
			delete(h, k)
		}
	}
}

// takeHeader returns the first value of the header name (canonical form)
// and removes it in every spelling ('_' or '.' for '-', any case), so a
// backend never sees it.
func takeHeader(h http.Header, name string) string {
	var v string
	if vs := h[name]; len(vs) > 0 {
		v = vs[0]
		delete(h, name)
	}
	if !isSpoofable(name) {
		// scrubHeaders does not cover it: remove other spellings here.
		want := normalHeader(name)
		for k := range h {
			if normalHeader(k) == want {
				delete(h, k)
			}
		}
	}
	return v
}

func normalHeader(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c == '_' || c == '.':
			b[i] = '-'
		}
	}
	return string(b)
}
