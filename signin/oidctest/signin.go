package oidctest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ErrLoginNotRedirected is SignIn's error when /.gatehouse/login did not
// send the browser to the provider (sign-in not ready yet, or its endpoints
// rate limited): worth trying again a moment later.
var ErrLoginNotRedirected = errors.New("/.gatehouse/login did not redirect to the provider")

// SignIn walks the code flow a browser walks through a gatehouse door on
// base (http://host:port, or a URL whose client dials the door), for host:
// /.gatehouse/login, the provider's authorization (a provider with
// AutoLogin signs the user in at once), the callback. door and provider
// are the clients for the two sides; redirects are not followed on
// either. It returns what a browser then sends to any page of host: the
// cookies the callback set for Path=/, as a Cookie header value (the
// tokens cookie, Path=/.gatehouse/, stays out).
func SignIn(door, provider *http.Client, base, host, issuer string) (string, error) {
	noFollow := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	dc, pc := *door, *provider
	dc.CheckRedirect, pc.CheckRedirect = noFollow, noFollow
	get := func(c *http.Client, u string, cookies []*http.Cookie) (*http.Response, error) {
		req, err := http.NewRequest("GET", u, nil)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(u, base) {
			req.Host = host
		}
		for _, ck := range cookies {
			req.AddCookie(ck)
		}
		resp, err := c.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
		}
		return resp, err
	}

	// 1. /.gatehouse/login: a flow cookie and a redirect to the provider.
	resp, err := get(&dc, base+"/.gatehouse/login?rd=/", nil)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, issuer+"/") {
		return "", fmt.Errorf("%w: %s, Location %q (want %s)", ErrLoginNotRedirected, resp.Status, loc, issuer)
	}
	flow := resp.Cookies()
	// 2. The provider signs the user in (its authorization endpoint, its
	// login page, its callback) and sends the browser back.
	iss, _ := url.Parse(issuer)
	var cb *url.URL
	for hop := 0; cb == nil; hop++ {
		if resp, err = get(&pc, loc, nil); err != nil {
			return "", fmt.Errorf("provider: %w", err)
		}
		next, err := resp.Location()
		if err != nil || resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther || hop == 5 {
			return "", fmt.Errorf("provider answered %s at %s", resp.Status, loc)
		}
		if next.Host == iss.Host {
			loc = next.String()
		} else {
			cb = next
		}
	}
	// 3. The callback on the family host makes the session.
	if resp, err = get(&dc, base+cb.RequestURI(), flow); err != nil {
		return "", fmt.Errorf("callback: %w", err)
	}
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		return "", fmt.Errorf("callback answered %s", resp.Status)
	}
	var session []string
	for _, c := range resp.Cookies() {
		if c.Value != "" && c.MaxAge >= 0 && !strings.Contains(c.Name, "-flow-") && (c.Path == "" || c.Path == "/") {
			session = append(session, c.Name+"="+c.Value)
		}
	}
	if len(session) == 0 {
		return "", errors.New("the callback set no session cookie")
	}
	return strings.Join(session, "; "), nil
}
