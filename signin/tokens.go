package signin

import (
	"context"
	"errors"
	"fmt"

	"github.com/coreos/go-oidc/v3/oidc"
)

// verifyIDToken checks an ID token as a sign-in and a renewal both must:
// signed by the provider's current keys, its issuer, this client as
// audience, unexpired, and — when it carries at_hash — bound to the access
// token it came with, so an access token of another grant cannot be
// slipped in beside it.
func verifyIDToken(ctx context.Context, v *verifiers, raw, accessToken string) (*oidc.IDToken, error) {
	idt, err := v.id.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(accessToken); err != nil {
			return nil, err
		}
	}
	return idt, nil
}

// tokenIdentity reads who a verified ID token (and, where groups come from
// it, the access token) names: the same for a sign-in and a renewal.
func (s *SignIn) tokenIdentity(ctx context.Context, v *verifiers, idt *oidc.IDToken, accessToken string) (identity, error) {
	var idClaims map[string]any
	if err := idt.Claims(&idClaims); err != nil {
		return identity{}, err
	}
	if err := checkAZP(idClaims, idt.Audience, s.cfg.ClientID); err != nil {
		return identity{}, err
	}
	accessClaims, err := s.accessClaims(ctx, v, accessToken)
	if err != nil {
		return identity{}, err
	}
	return identityFrom(idClaims, accessClaims, s.cfg)
}

// accessClaims verifies the access token (a JWT, as Keycloak issues) when
// groups are read from it: signed by the provider, unexpired, and issued
// to this client.
func (s *SignIn) accessClaims(ctx context.Context, v *verifiers, raw string) (map[string]any, error) {
	if len(s.cfg.GroupsFromAccessToken) == 0 {
		return nil, nil
	}
	t, err := v.access.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("access token (groups_from_access_token needs a JWT access token): %w", err)
	}
	var c map[string]any
	if err := t.Claims(&c); err != nil {
		return nil, err
	}
	if azp, _ := c["azp"].(string); azp != s.cfg.ClientID && !contains(t.Audience, s.cfg.ClientID) {
		return nil, errors.New("access token was issued to another client")
	}
	return c, nil
}

// checkAZP: an ID token with several audiences must name this client as
// its authorized party.
func checkAZP(claims map[string]any, aud []string, clientID string) error {
	if len(aud) <= 1 {
		return nil
	}
	if azp, _ := claims["azp"].(string); azp != clientID {
		return errors.New("ID token has several audiences and is not authorized for this client")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
