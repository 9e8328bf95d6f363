package signin

import (
	"encoding/json"
	"errors"
)

// session is what the session cookie carries, sealed (encrypted and
// authenticated). Sessions are stateless: any gatehouse with the key file
// can check one, and a restart signs nobody out. What the server keeps is
// the revocation record (see revocations) and a short-lived cache of fresh
// refreshes.
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
	Refresh  string   `json:"rt,omitempty"`
	IDToken  string   `json:"it,omitempty"` // kept for logout's id_token_hint
}

const sessionVersion = 1

func marshalSession(s *session) ([]byte, error) { return json.Marshal(s) }

func unmarshalSession(b []byte) (*session, error) {
	var s session
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	if s.V != sessionVersion || s.ID == "" || s.Sub == "" {
		return nil, errors.New("not a session")
	}
	return &s, nil
}
