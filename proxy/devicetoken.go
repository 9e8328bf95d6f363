package proxy

import (
	"net/http"
	"net/netip"

	"gatehouse/auth"
)

// DeviceTokens is implemented by a SignIn that also accepts device tokens:
// long-lived tokens a family member made for a phone or TV app, sent in
// the oidc block's device_token_header.
type DeviceTokens interface {
	// Device returns the family user a device token stands for. When it
	// returns false it has answered the request itself (401 JSON for an
	// unknown or revoked token, 429 over the token's rate limit).
	Device(w http.ResponseWriter, r *http.Request, token string, client netip.Addr) (*auth.FamilyUser, bool)
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
