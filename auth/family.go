package auth

import "strings"

// HeaderValue is the value of a family identity header
// (routes.FamilyIdentityHeaderNames) for this user:
//
//   - X-Forwarded-User, Remote-User, X-Remote-User: the user name
//     (preferred_username), else the email, else the provider's subject:
//     what trusted-header sign-in (Navidrome, Jellyseerr, Radicale) looks
//     users up by;
//   - X-Forwarded-Preferred-Username: preferred_username (may be empty);
//   - X-Forwarded-Email, Remote-Email: the verified email (may be empty);
//   - X-Forwarded-Groups, Remote-Groups: the groups, comma-separated.
//
// ok is false when the value would be empty: the header is then not sent.
func (u *FamilyUser) HeaderValue(name string) (v string, ok bool) {
	switch name {
	case "X-Forwarded-User", "Remote-User", "X-Remote-User":
		v = u.Username
		if v == "" {
			v = u.Email
		}
		if v == "" {
			v = u.Subject
		}
	case "X-Forwarded-Preferred-Username":
		v = u.Username
	case "X-Forwarded-Email", "Remote-Email":
		v = u.Email
	case "X-Forwarded-Groups", "Remote-Groups":
		v = strings.Join(u.Groups, ",")
	}
	return v, v != "" && headerSafe(v)
}

// headerSafe refuses values a header cannot carry (control characters);
// claims are checked at sign-in, this is the last guard.
func headerSafe(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
