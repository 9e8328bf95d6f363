package signin

import (
	"encoding/base64"
	"encoding/json"
	"gatehouse/signin/oidctest"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// jwtClaims reads a JWT's claims without verifying it (test bookkeeping).
func jwtClaims(raw any) map[string]any {
	s, _ := raw.(string)
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var c map[string]any
	_ = json.Unmarshal(b, &c)
	return c
}

// A renewal's new ID token is verified as fully as a sign-in's: signed by
// the realm, its issuer, this client as audience, unexpired, at_hash
// matching the access token it came with, and the same user. Anything
// else ends the session for good: its cookie, replayed once the provider
// behaves again (and still honours the refresh token, as Keycloak does by
// default), is refused.
func TestRenewalVerifiesTheNewIDToken(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	h.kc.Mu.Lock()
	h.kc.KeepRefresh = true
	h.kc.Mu.Unlock()

	// Bob's tokens, as the provider issued them to bob's own sign-in.
	var bobs map[string]any
	h.kc.SetTamper(func(grant string, body map[string]any) {
		if grant == "authorization_code" && jwtClaims(body["id_token"])["sub"] == "id-bob" {
			bobs = maps.Clone(body)
		}
	})
	h.browser().signIn("https://photos.example.com/", "bob")
	if bobs == nil {
		t.Fatal("bob's tokens not seen")
	}
	forge := func(mutate func(map[string]any)) func(map[string]any) {
		return func(body map[string]any) {
			c := map[string]any{
				"iss": h.kc.Issuer, "sub": "id-alice", "aud": oidctest.ClientID, "azp": oidctest.ClientID,
				"iat": time.Now().Unix(), "exp": time.Now().Add(2 * time.Hour).Unix(),
				"email": "alice@example.com", "email_verified": true, "preferred_username": "alice",
			}
			mutate(c)
			body["id_token"] = mustSign(t)(oidctest.SignTyped(h.kc.Keys[0], "JWT", c))
		}
	}
	for _, c := range []struct {
		name   string
		tamper func(map[string]any)
	}{
		{"access token of another sign-in (at_hash)", func(b map[string]any) { b["access_token"] = bobs["access_token"] }},
		{"ID token of another user", func(b map[string]any) {
			b["id_token"], b["access_token"] = bobs["id_token"], bobs["access_token"]
		}},
		{"ID token for another client", forge(func(c map[string]any) { c["aud"], c["azp"] = "someone-else", "someone-else" })},
		{"ID token of another issuer", forge(func(c map[string]any) { c["iss"] = "https://evil.example.net/realms/home" })},
		{"expired ID token", forge(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })},
	} {
		h.kc.SetTamper(nil)
		a := h.browser()
		a.signIn("https://photos.example.com/", "alice")
		old := a.cookie("__Secure-gatehouse")
		h.kc.SetTamper(func(grant string, body map[string]any) {
			if grant == "refresh_token" {
				c.tamper(body)
			}
		})
		h.clock.Advance(6 * time.Minute)
		if a.signedIn() {
			t.Errorf("%s: the renewal was accepted", c.name)
		}
		h.kc.SetTamper(nil)
		replay := h.browser()
		u, _ := url.Parse("https://photos.example.com/")
		replay.jar.SetCookies(u, []*http.Cookie{old})
		if replay.signedIn() {
			t.Errorf("%s: the session's cookie still works after the refused renewal", c.name)
		}
	}
}
