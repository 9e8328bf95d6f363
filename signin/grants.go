package signin

// Device tokens bound to the provider. A device token stands for its
// owner without a cookie, so nothing about the token itself would notice
// the owner's account ending at the provider. Each owner therefore has a
// grant: an offline token (scope offline_access) obtained when their first
// device token is made, sealed with the cookie keys and kept beside the
// tokens (devices.Grant). gatehouse renews it every device_refresh_interval
// and on the first use of one of the owner's tokens after a start. When the
// provider refuses it (invalid_grant: the account disabled or deleted, the
// offline session revoked by an admin, or idle for longer than the
// provider allows), the owner's device tokens end at once. While the
// provider is unreachable they keep working. A browser logout, even a
// back-channel logout for the owner, does not touch them: an offline token
// outlives the browser's session, as a sign-out in the browser is not a
// lost phone.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"gatehouse/devices"
)

// bindScopes are the scopes of a binding: the configured ones plus
// offline_access, which makes the provider's refresh token an offline
// token, alive beyond the browser's session.
func bindScopes(scopes []string) []string {
	if slices.Contains(scopes, "offline_access") {
		return scopes
	}
	return append(slices.Clone(scopes), "offline_access")
}

// grantState is what the provider said about an owner's grant.
type grantState uint8

const (
	grantAlive   grantState = iota // renewed just now
	grantEnded                     // refused: the owner's tokens are gone
	grantMissing                   // none on file, or it cannot be opened
	grantTrouble                   // the provider could not be asked
)

func (s *SignIn) grantAD(sub string) []byte {
	return []byte("grant\x00" + sub + "\x00" + s.cfg.Issuer + "\x00" + s.cfg.ClientID)
}

func (s *SignIn) saveGrant(sub, refresh string) error {
	sealed, err := s.keys.seal(purposeGrant, []byte(refresh), s.grantAD(sub))
	if err != nil {
		return err
	}
	return s.devices.SetGrant(devices.Grant{Subject: sub, Sealed: sealed, Checked: s.now()})
}

// openGrant returns the owner's offline token, or "" if there is none on
// file or it does not open (sealed with a cookie key no longer listed).
func (s *SignIn) openGrant(sub string) (string, error) {
	g, err := s.devices.GrantOf(sub)
	if err != nil || g == nil {
		return "", err
	}
	pt, _, err := s.keys.open(purposeGrant, g.Sealed, s.grantAD(sub))
	if err != nil {
		s.log.Warn("device token owner's offline token does not open; their tokens stay unbound until they make a new one",
			"sub", sub, "err", err)
		return "", nil
	}
	return string(pt), nil
}

// checkGrant renews the owner's offline token with the provider, once per
// owner at a time, and ends the owner's tokens if the provider refuses it.
func (s *SignIn) checkGrant(ctx context.Context, sub string) grantState {
	v, _, _ := s.refreshes.Do("grant:"+sub, func() (any, error) {
		st := s.doCheckGrant(ctx, sub)
		if st != grantTrouble {
			s.grantChecked.Store(sub, true)
		}
		return st, nil
	})
	return v.(grantState)
}

func (s *SignIn) doCheckGrant(ctx context.Context, sub string) grantState {
	rt, err := s.openGrant(sub)
	if err != nil {
		s.log.Error("device tokens unreadable", "err", err)
		return grantTrouble
	}
	if rt == "" {
		return grantMissing
	}
	p, v := s.verifiers()
	if p == nil {
		return grantTrouble
	}
	octx, cancel := s.oauthContext(ctx)
	defer cancel()
	tok, err := s.oauth(p, "").TokenSource(octx, &oauth2.Token{RefreshToken: rt}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		switch {
		case providerTrouble(err):
			s.markDown(err)
			return grantTrouble
		case errors.As(err, &re) && re.ErrorCode == "invalid_grant":
			s.endOwner(sub, err)
			return grantEnded
		default:
			// invalid_client and the like: gatehouse's configuration, not
			// the owner's account. Say so; do not punish the family.
			s.log.Error("the provider refused to renew a device token owner's offline token; check the oidc client",
				"sub", sub, "err", err)
			return grantTrouble
		}
	}
	if raw, _ := tok.Extra("id_token").(string); raw != "" {
		idt, err := verifyIDToken(octx, v, raw, tok.AccessToken)
		switch {
		case err != nil:
			s.log.Error("renewed offline token's ID token does not verify; device tokens kept for now", "sub", sub, "err", err)
			return grantTrouble
		case idt.Subject != sub:
			s.endOwner(sub, errOtherSubject)
			return grantEnded
		}
	}
	if tok.RefreshToken != "" {
		rt = tok.RefreshToken
	}
	if err := s.saveGrant(sub, rt); err != nil {
		s.log.Error("renewed offline token not saved", "sub", sub, "err", err)
	}
	return grantAlive
}

// endOwner ends the device tokens of an owner the provider no longer
// accepts, and says why.
func (s *SignIn) endOwner(sub string, why error) {
	gone, err := s.devices.EndOwner(sub)
	if err != nil {
		s.log.Error("device tokens of an ended account not revoked", "sub", sub, "err", err)
		return
	}
	names := make([]string, 0, len(gone))
	email := ""
	for _, t := range gone {
		names = append(names, t.Name)
		email = t.Email
		s.outcome("device_token_revoked")
	}
	s.log.Warn("device tokens revoked: the provider refused their owner's offline token (account disabled or deleted, or its offline session ended)",
		"sub", sub, "email", email, "devices", strings.Join(names, ", "), "err", why)
}

// releaseGrant revokes an owner's offline token at the provider (RFC 7009)
// and forgets it, once the owner has no device token left.
func (s *SignIn) releaseGrant(ctx context.Context, sub string) {
	rt, _ := s.openGrant(sub)
	if err := s.devices.DropGrant(sub); err != nil {
		s.log.Error("offline token not dropped", "sub", sub, "err", err)
		return
	}
	s.grantChecked.Delete(sub)
	p := s.prov.Load()
	if rt == "" || p == nil || p.revocation == "" {
		return
	}
	octx, cancel := s.oauthContext(ctx)
	defer cancel()
	form := url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}
	req, err := http.NewRequestWithContext(octx, http.MethodPost, p.revocation, strings.NewReader(form.Encode()))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// RFC 6749 2.3.1: client credentials form-encoded in Basic auth.
	req.SetBasicAuth(url.QueryEscape(s.cfg.ClientID), url.QueryEscape(s.secret))
	resp, err := s.client.Do(req)
	if err != nil {
		s.log.Info("offline token not revoked at the provider", "sub", sub, "err", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.log.Info("offline token not revoked at the provider", "sub", sub, "status", resp.Status)
	}
}

// deviceOwnerOK is the check on a device token's use: the first use of an
// owner's token after a start asks the provider about the owner's grant
// (later ones rely on the schedule). False: the provider refused it just
// now, and the token is gone.
func (s *SignIn) deviceOwnerOK(ctx context.Context, sub string) bool {
	if _, done := s.grantChecked.Load(sub); done || !s.Ready() {
		return true
	}
	return s.checkGrant(ctx, sub) != grantEnded
}

// checkGrants renews every grant due, and releases the grants of owners
// who have no device token left (revoked on the page or with `gatehouse
// tokens revoke`).
func (s *SignIn) checkGrants(ctx context.Context) {
	if !s.Ready() {
		return
	}
	grants, err := s.devices.Grants()
	if err != nil {
		s.log.Error("device tokens unreadable", "err", err)
		return
	}
	tokens, _ := s.devices.List(nil)
	now := s.now()
	for _, g := range grants {
		if ctx.Err() != nil || !s.Ready() {
			return
		}
		if now.Sub(g.Checked) < s.cfg.DeviceRefreshInterval && !g.Checked.After(now.Add(5*time.Minute)) {
			continue
		}
		if !slices.ContainsFunc(tokens, func(t devices.Token) bool { return t.Subject == g.Subject }) {
			s.releaseGrant(ctx, g.Subject)
			continue
		}
		s.checkGrant(ctx, g.Subject)
	}
}

// grantLoop runs checkGrants on a schedule until ctx ends.
func (s *SignIn) grantLoop(ctx context.Context) {
	defer s.loops.Done()
	t := time.NewTicker(s.opt.GrantCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.checkGrants(ctx)
		}
	}
}

// warnUnbound says at start how many device tokens have no grant: made
// before tokens were bound to the provider, they keep working until
// revoked, and the provider cannot end them.
func (s *SignIn) warnUnbound() {
	tokens, err := s.devices.List(nil)
	if err != nil || len(tokens) == 0 {
		return
	}
	grants, _ := s.devices.Grants()
	owners := map[string]bool{}
	n := 0
	for _, t := range tokens {
		if !slices.ContainsFunc(grants, func(g devices.Grant) bool { return g.Subject == t.Subject }) {
			n++
			owners[t.Email] = true
		}
	}
	if n > 0 {
		s.log.Warn(fmt.Sprintf("%d device tokens of %d people are not bound to the provider: they keep working when the account is disabled; "+
			"their owners bind them by making one new token at %s (or revoke them with gatehouse tokens revoke)", n, len(owners), devicesPath))
	}
}
