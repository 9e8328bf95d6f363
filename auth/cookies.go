package auth

import "strings"

// IsGatehouseCookie reports whether a cookie name is one of gatehouse's own:
// the family session (__Secure-gatehouse or __Host-gatehouse, and its
// chunks -1, -2, …) and the per-sign-in flow cookies
// (__Host-gatehouse-flow-…). Clients never pass them to a backend, and a
// backend may never set or clear them (invariant 10, docs/ARCHITECTURE.md):
// an app that could would swap the session of every family host. Letter
// case is ignored, as browsers ignore it for the __Host-/__Secure- prefixes.
func IsGatehouseCookie(name string) bool {
	for _, own := range [...]string{"__Host-gatehouse", "__Secure-gatehouse"} {
		if len(name) >= len(own) && strings.EqualFold(name[:len(own)], own) &&
			(len(name) == len(own) || name[len(own)] == '-') {
			return true
		}
	}
	return false
}
