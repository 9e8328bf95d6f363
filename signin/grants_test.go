package signin

import (
	"context"
	"gatehouse/signin/oidctest"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// appStatus is the status an app with the device token gets on a family
// route.
func (h *harness) appStatus(token string) int {
	h.t.Helper()
	resp, _ := appGet(h.t, h.app(), "https://photos.example.com/albums", "X-Gatehouse-Token", token)
	return resp.StatusCode
}

// A device token is bound to its owner's account at the provider: making
// the first one gets an offline token for the owner (through the provider,
// silently while the owner's session there lasts), kept sealed in the state
// directory; renewing it on schedule ends the owner's tokens at once when
// the provider refuses it (a disabled account), and keeps them while the
// provider is unreachable. A browser logout of the owner, even a
// back-channel logout for their sub, leaves the tokens working.
func TestDeviceTokensFollowTheAccount(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	ctx := context.Background()
	alice, kid := h.browser(), h.browser()
	alice.signIn("https://photos.example.com/", "alice")
	kid.signIn("https://photos.example.com/", "kid")

	_, refreshesBefore := h.kc.Counts()
	tv := alice.makeToken("TV")
	if n := h.kc.OfflineTokens("alice"); n != 1 {
		t.Fatalf("alice's offline tokens at the provider: %d, want 1", n)
	}
	h.kc.Mu.Lock()
	scope, sso := h.kc.LastAuthorize.Get("scope"), h.kc.SSOLogins
	h.kc.Mu.Unlock()
	if !strings.Contains(scope, "offline_access") || sso != 1 {
		t.Errorf("binding: scope %q, %d SSO answers (want offline_access, answered by the provider's session)", scope, sso)
	}
	// Sealed at rest: the offline token itself is not in the file.
	data, _ := os.ReadFile(h.cfg.OIDC.DeviceTokenFile)
	for _, tok := range h.kc.OfflineTokenValues() {
		if strings.Contains(string(data), tok) {
			t.Error("the offline token is stored in the clear")
		}
	}
	// A second token reuses the grant, after asking the provider about it.
	phone := alice.makeToken("Phone")
	if n := h.kc.OfflineTokens("alice"); n != 1 {
		t.Errorf("offline tokens after a second device: %d", n)
	}
	if _, r := h.kc.Counts(); r != refreshesBefore+1 {
		t.Errorf("%d refresh grants for the second device, want 1 (the grant's check)", r-refreshesBefore)
	}
	kidTab := kid.makeToken("Tablet")
	for name, tok := range map[string]string{"tv": tv, "phone": phone, "tablet": kidTab} {
		if c := h.appStatus(tok); c != http.StatusOK {
			t.Fatalf("%s: %d", name, c)
		}
	}

	// Alice signs out in the browser: Keycloak ends her session and posts
	// a back-channel logout for her sub. Her devices are not lost phones.
	for _, sid := range h.kc.SessionsOf("alice") {
		h.kc.EndSID(sid)
	}
	op := h.browser()
	req, _ := http.NewRequest(http.MethodPost, "https://photos.example.com/.gatehouse/backchannel-logout",
		strings.NewReader(url.Values{"logout_token": {h.kc.LogoutToken("id-alice", "", nil)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, _ := op.do(req); resp.StatusCode != http.StatusOK {
		t.Fatalf("back-channel logout: %d", resp.StatusCode)
	}
	if alice.signedIn() {
		t.Error("alice's browser session survived the logout")
	}
	h.clock.Advance(61 * time.Minute)
	h.si.checkGrants(ctx)
	if c := h.appStatus(tv); c != http.StatusOK {
		t.Errorf("alice's TV after a browser logout and a grant check: %d", c)
	}

	// The provider is unreachable: nothing ends.
	h.kc.Update("kid", func(u *oidctest.User) { u.Disabled = true })
	h.kc.Stop()
	h.waitDown()
	h.clock.Advance(61 * time.Minute)
	h.si.checkGrants(ctx)
	if c := h.appStatus(kidTab); c != http.StatusOK {
		t.Errorf("kid's tablet while the provider is down: %d", c)
	}
	// Back up: the kid's account is disabled, the next check ends the
	// tablet at once, and the log says why.
	h.kc.Start()
	h.waitReady()
	h.si.checkGrants(ctx)
	resp, body := appGet(t, h.app(), "https://photos.example.com/albums", "X-Gatehouse-Token", kidTab)
	checkTokenRefused(t, "the tablet of a disabled account", resp, body)
	if logs := h.logs.String(); !strings.Contains(logs, "device tokens revoked: the provider refused their owner's offline token") ||
		!strings.Contains(logs, "kid@example.com") || !strings.Contains(logs, "invalid_grant") {
		t.Errorf("the log does not say why the tablet stopped:\n%s", logs)
	}
	if list, _ := h.si.DeviceTokens().List(nil); len(list) != 2 {
		t.Errorf("tokens left: %+v", list)
	}
	for name, tok := range map[string]string{"tv": tv, "phone": phone} {
		if c := h.appStatus(tok); c != http.StatusOK {
			t.Errorf("alice's %s after the kid's ended: %d", name, c)
		}
	}
}

// The schedule runs by itself; a deleted account's tokens end with it.
// An admin signing the user out in Keycloak ends them where that revokes
// the offline token too (Keycloak's "Sign out" of a user does), not where
// only browser sessions end.
func TestDeviceTokensEndWithTheAccount(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	bob, alice := h.browser(), h.browser()
	bob.signIn("https://photos.example.com/", "bob")
	alice.signIn("https://photos.example.com/", "alice")
	bobTV := bob.makeToken("Bob's TV")
	aliceTV := alice.makeToken("Alice's TV")

	waitRefused := func(what, token string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); h.appStatus(token) != http.StatusUnauthorized; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the token still works", what)
			}
		}
	}

	h.kc.DeleteUser("bob")
	h.clock.Advance(61 * time.Minute) // the schedule's hour
	waitRefused("a deleted account's TV", bobTV)

	// Browser sessions only: the offline session stays, and so does the TV.
	h.kc.SignOutAll("alice", false)
	h.clock.Advance(61 * time.Minute)
	h.si.checkGrants(context.Background())
	if c := h.appStatus(aliceTV); c != http.StatusOK {
		t.Fatalf("alice's TV after \"sign out\" of her sessions: %d", c)
	}
	if alice.signedIn() {
		t.Error("alice's browser session survived the admin's sign-out")
	}
	// Offline sessions too: the TV stops with the next check.
	h.kc.SignOutAll("alice", true)
	h.clock.Advance(61 * time.Minute)
	waitRefused("after the admin revoked alice's offline session", aliceTV)
}

// After a restart the first use of an owner's token asks the provider at
// once, rather than waiting for the schedule: an account disabled while
// gatehouse was down does not get back in.
func TestDeviceTokenCheckedOnFirstUseAfterRestart(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	kid := h.browser()
	kid.signIn("https://photos.example.com/", "kid")
	tok := kid.makeToken("Tablet")
	if c := h.appStatus(tok); c != http.StatusOK {
		t.Fatalf("tablet: %d", c)
	}
	h.kc.Update("kid", func(u *oidctest.User) { u.Disabled = true })
	if c := h.appStatus(tok); c != http.StatusOK {
		t.Fatalf("before the restart, within the schedule: %d", c)
	}

	// A restart: a new sign-in on the same state directory.
	next, err := New(h.cfg.OIDC, h.signInOptions(harnessOpts{}))
	if err != nil {
		t.Fatal(err)
	}
	h.si.Close()
	h.si = next
	h.waitReady()
	h.gw.SetSignIn(next)
	resp, body := appGet(t, h.app(), "https://photos.example.com/albums", "X-Gatehouse-Token", tok)
	checkTokenRefused(t, "first use after a restart, account disabled", resp, body)
}

// The owner's last token revoked on the page: the offline token is
// revoked at the provider too (RFC 7009) and forgotten, so no offline
// session is left behind.
func TestLastDeviceTokenReleasesTheGrant(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true})
	b := h.browser()
	b.signIn("https://photos.example.com/", "alice")
	b.makeToken("TV")
	list, _ := h.si.DeviceTokens().List(nil)
	b.noRedirects(true)
	resp, _ := b.postDevices(url.Values{"csrf": {b.devicesCSRF()}, "action": {"revoke"}, "id": {list[0].ID}})
	b.noRedirects(false)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if n := h.kc.OfflineTokens("alice"); n != 0 {
		t.Errorf("offline tokens left at the provider: %d", n)
	}
	if g, _ := h.si.DeviceTokens().GrantOf("id-alice"); g != nil {
		t.Errorf("grant kept: %+v", g)
	}
	// A new token binds again.
	tok := b.makeToken("New TV")
	if c := h.appStatus(tok); c != http.StatusOK || h.kc.OfflineTokens("alice") != 1 {
		t.Errorf("a new token after the release: %d, %d offline tokens", c, h.kc.OfflineTokens("alice"))
	}
}
