package signin

import (
	"net/http"
	"strings"
	"testing"
)

// TestPortalShowsExactlyTheirServices: a member signed in through the
// provider sees the services the door would let them into — family
// routes of their groups and app routes — and no other; on every family
// host and on portal_host alike, with the devices page and sign-out.
func TestPortalShowsExactlyTheirServices(t *testing.T) {
	h := newHarness(t, harnessOpts{startOP: true, oidcExtra: `  portal_host = "home.example.com"`})
	cases := []struct {
		user, start string
		see, notSee []string
	}{
		{"kid", "https://photos.example.com/.gatehouse/",
			[]string{"photos", "files", "passwords", "music", "Family photos", "📷", "https://files.example.com"}, []string{"request"}},
		{"alice", "https://home.example.com/.gatehouse/",
			[]string{"photos", "files", "passwords", "music", "request", "https://request.example.com"}, nil},
	}
	for _, c := range cases {
		t.Run(c.user, func(t *testing.T) {
			b := h.browser()
			resp, body := b.signIn(c.start, c.user)
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Signed in as") {
				t.Fatalf("portal after sign-in: %d %s", resp.StatusCode, body)
			}
			if got := resp.Request.URL.String(); got != c.start {
				t.Errorf("sign-in returned to %s, want %s", got, c.start)
			}
			for _, s := range c.see {
				if !strings.Contains(body, s) {
					t.Errorf("%s's portal lacks %q", c.user, s)
				}
			}
			for _, s := range c.notSee {
				if strings.Contains(body, s) {
					t.Errorf("%s's portal shows %q, which they cannot open", c.user, s)
				}
			}
			for _, s := range []string{`href="/.gatehouse/devices"`, `action="/.gatehouse/logout"`} {
				if !strings.Contains(body, s) {
					t.Errorf("portal lacks %s", s)
				}
			}
		})
	}
	// Without a session a browser is sent to sign in, an API client gets 401.
	b := h.browser()
	b.noRedirects(true)
	if resp, _ := b.get("https://photos.example.com/.gatehouse/"); resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		t.Errorf("portal without a session: %d, want a sign-in redirect", resp.StatusCode)
	}
}
