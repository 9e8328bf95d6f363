package signin

import (
	"encoding/json"
	"errors"

	"gatehouse/auth"
)

// session is what the session cookie carries, sealed (encrypted and
// authenticated): what judging a request needs, and nothing more, since
// the browser sends it with every request. Sessions are stateless: any
// gatehouse with the key file can check one, and a restart signs nobody
// out. What the server keeps is the revocation record (see revocations),
// a short-lived cache of fresh refreshes, and the tokens of the sessions it
// has seen (tokenMemory).
type session struct {
	V        int      `json:"v"`
	ID       string   `json:"id"` // gatehouse session id, random per sign-in
	Sub      string   `json:"sub"`
	Email    string   `json:"em,omitempty"`
	Name     string   `json:"nm,omitempty"`
	Username string   `json:"un,omitempty"`
	SID      string   `json:"sid,omitempty"` // the provider's session id
	Groups   []string `json:"g,omitempty"`
	Created  int64    `json:"c"`  // unix nanoseconds: sign-in
	Expires  int64    `json:"x"`  // unix nanoseconds: absolute end
	Checked  int64    `json:"ck"` // unix nanoseconds: last confirmed by the provider

	// user is who the session stands for, made when the cookie is
	// opened (shared by every request with it, never changed); nil on
	// a session made or renewed since.
	user *auth.FamilyUser
}

func (s *session) familyUser() *auth.FamilyUser {
	return &auth.FamilyUser{Subject: s.Sub, Email: s.Email, Username: s.Username, Groups: s.Groups}
}

// tokens are what renewal and logout need and an ordinary request never
// does: they travel in their own cookie, scoped to /.gatehouse/ and bound
// to the session id, and live in memory (tokenMemory).
type tokens struct {
	Refresh string `json:"rt,omitempty"`
	IDToken string `json:"it,omitempty"` // kept for logout's id_token_hint
	// Checked is the session's Checked when the provider issued these:
	// of two copies, the later one holds the refresh token the provider
	// honours (it may rotate them).
	Checked int64 `json:"ck"`
}

// Session cookie versions: version 1 carried the tokens inside the
// session cookie; version 2 has them in the tokens cookie. A version 1
// cookie still opens and is resealed into the two cookies on first use.
const (
	sessionVersion       = 2
	legacySessionVersion = 1
)

func marshalSession(s *session) ([]byte, error) { return json.Marshal(s) }

// unmarshalSession opens a session record of either version; legacy holds
// the tokens a version 1 cookie carried (nil for version 2), and the
// session comes back as version 2.
func unmarshalSession(b []byte) (sess *session, legacy *tokens, err error) {
	var s struct {
		session
		Refresh string `json:"rt,omitempty"`
		IDToken string `json:"it,omitempty"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, nil, err
	}
	if (s.V != sessionVersion && s.V != legacySessionVersion) || s.ID == "" || s.Sub == "" {
		return nil, nil, errors.New("not a session")
	}
	if s.V == legacySessionVersion {
		s.V = sessionVersion
		legacy = &tokens{Refresh: s.Refresh, IDToken: s.IDToken, Checked: s.Checked}
	}
	return &s.session, legacy, nil
}

func marshalTokens(t *tokens) ([]byte, error) { return json.Marshal(t) }

func unmarshalTokens(b []byte) (*tokens, error) {
	var t tokens
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, err
	}
	return &t, nil
}
