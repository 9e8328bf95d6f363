package signin

// Device tokens: a signed-in family member makes a long-lived token for a
// phone or TV app at /.gatehouse/devices on any family host; the app sends
// it in the oidc block's device_token_header and passes family routes as
// its owner, without a cookie and without the provider (it keeps working
// while Keycloak is down). The devices package keeps the hashed tokens.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"
	"golang.org/x/oauth2"

	"gatehouse/auth"
	"gatehouse/devices"
	"gatehouse/ratelimit"
)

// LimiterSource makes rate limiters; *ratelimit.Registry is one.
type LimiterSource interface {
	Limiter(name string, r ratelimit.Rule, ban *ratelimit.BanRule) *ratelimit.Limiter
}

var (
	defaultTokenRule   = ratelimit.Rule{Rate: 20, Burst: 400}
	defaultFailureRule = ratelimit.Rule{Rate: 1, Burst: 10}
	failureBan         = &ratelimit.BanRule{Failures: 30, Window: 10 * time.Minute, BanFor: time.Hour, Statuses: []int{http.StatusUnauthorized}}
)

func (s *SignIn) setupDeviceLimits() {
	if s.opt.Limits == nil {
		return
	}
	use, fails := s.opt.DeviceTokenRule, s.opt.DeviceTokenFailures
	if use == (ratelimit.Rule{}) {
		use = defaultTokenRule
	}
	if fails == (ratelimit.Rule{}) {
		fails = defaultFailureRule
	}
	s.tokenUse = s.opt.Limits.Limiter("builtin/device-token", use, nil)
	s.tokenFails = s.opt.Limits.Limiter("builtin/device-token-failures", fails, failureBan)
}

// DeviceTokens is the store of device tokens.
func (s *SignIn) DeviceTokens() *devices.Store { return s.devices }

// Device implements proxy.DeviceTokens: the family user a device token
// stands for. An unknown or revoked token gets 401 JSON; a token used
// faster than its limit, or an address that keeps sending unknown tokens,
// gets 429.
func (s *SignIn) Device(w http.ResponseWriter, r *http.Request, token string, client netip.Addr) (*auth.FamilyUser, bool) {
	host := strings.ToLower(r.Host)
	now := time.Now()
	t, err := s.devices.Lookup(token)
	if err != nil {
		s.log.Error("device tokens unreadable; refusing every token", "err", err)
		w.Header().Set("Retry-After", "30")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{
			"error": "device_tokens_unavailable", "message": "Device tokens are unavailable, try again shortly.",
		})
		return nil, false
	}
	if t == nil {
		if lim := s.tokenFails; lim != nil {
			key := ratelimit.ClientKey("", client)
			v := lim.Allow(key, now)
			if !v.OK {
				tooManyJSON(w, v)
				return nil, false
			}
			lim.Done(key, v, http.StatusUnauthorized, now)
		}
		s.outcome("device_token_refused")
		s.log.Info("device token refused", "host", host, "client", client)
		refuseToken(w, host)
		return nil, false
	}
	if lim := s.tokenUse; lim != nil {
		key := ratelimit.ClientKey("device:"+t.ID, netip.Addr{})
		v := lim.Allow(key, now)
		if !v.OK {
			tooManyJSON(w, v)
			return nil, false
		}
		lim.Done(key, v, 0, now)
	}
	if !s.deviceOwnerOK(r.Context(), t.Subject) {
		s.outcome("device_token_refused")
		refuseToken(w, host)
		return nil, false
	}
	s.used.touch(t.ID, now)
	return &auth.FamilyUser{Subject: t.Subject, Email: t.Email, Username: t.Username, Groups: t.Groups, Device: t.Name}, true
}

func refuseToken(w http.ResponseWriter, host string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
	writeJSON(w, http.StatusUnauthorized, map[string]string{
		"error":   "invalid_device_token",
		"message": "This device token is unknown or was revoked. Make a new one at https://" + host + devicesPath + ".",
	})
}

func tooManyJSON(w http.ResponseWriter, v ratelimit.Verdict) {
	w.Header().Set("Retry-After", fmt.Sprint(ratelimit.RetryAfterSeconds(v.RetryAfter)))
	writeJSON(w, http.StatusTooManyRequests, map[string]string{
		"error": "too_many_requests", "message": "Too many requests with device tokens; wait and try again.",
	})
}

// csrfAD binds a devices-page form token to the session it was made for.
func csrfAD(host string) []byte { return []byte("devices\x00" + host) }

func (s *SignIn) csrfToken(sess *session, host string) string {
	v, err := s.keys.seal(purposeCSRF, []byte(sess.ID), csrfAD(host))
	if err != nil {
		return ""
	}
	return v
}

func (s *SignIn) csrfOK(sess *session, host, got string) bool {
	if got == "" {
		return false
	}
	pt, _, err := s.keys.open(purposeCSRF, got, csrfAD(host))
	return err == nil && string(pt) == sess.ID
}

// devicesPage lists the signed-in member's device tokens, makes new ones
// and revokes them. Changes are POSTs from a page of the same host that
// carry a form token bound to the session.
func (s *SignIn) devicesPage(w http.ResponseWriter, r *http.Request, host string) {
	noStore(w)
	// Nothing leaves for another site (the QR code is a data: image), and
	// same-origin keeps the Origin on the page's own form POSTs: under
	// no-referrer Chromium sends "Origin: null".
	w.Header().Set("Referrer-Policy", "same-origin")
	if !s.Ready() {
		unavailable(w, r)
		return
	}
	sess := s.session(w, r)
	if sess == nil {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			s.Begin(w, r)
			return
		}
		writePage(w, http.StatusForbidden, "Not signed in", `Sign in first: <a href="`+devicesPath+`">devices</a>.`)
		return
	}
	if r.Method != http.MethodPost {
		s.renderDevices(w, http.StatusOK, sess, host, "")
		return
	}
	if !sameOrigin(r, host) {
		writePage(w, http.StatusForbidden, "Not changed", "Change device tokens from this site's own devices page.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil || !s.csrfOK(sess, host, r.PostForm.Get("csrf")) {
		writePage(w, http.StatusForbidden, "Not changed",
			`This form has expired. <a href="`+devicesPath+`">Open the devices page again</a>.`)
		return
	}
	switch r.PostForm.Get("action") {
	case "create":
		name := strings.TrimSpace(r.PostForm.Get("name"))
		if err := devices.CheckName(name); err != nil {
			s.renderDevices(w, http.StatusBadRequest, sess, host, `<p class="err">`+htmlEscape(capitalize(err.Error()))+`.</p>`)
			return
		}
		// A token is bound to its owner's offline token (grants.go): one
		// the provider accepts right now, or a new one got on the way.
		switch s.checkGrant(r.Context(), sess.Sub) {
		case grantAlive:
			s.createToken(w, sess, host, name)
		case grantTrouble:
			writePage(w, http.StatusServiceUnavailable, "Not made",
				`The sign-in provider could not be asked right now. <a href="`+devicesPath+`">Try again</a> in a moment.`)
		default:
			s.startFlow(w, r, host, flow{Return: "https://" + host + devicesPath, Bind: sess.Sub, Device: name}, false)
		}
	case "revoke":
		id := r.PostForm.Get("id")
		gone, err := s.devices.Revoke(func(t devices.Token) bool { return t.ID == id && t.Subject == sess.Sub })
		if err != nil && !errors.Is(err, devices.ErrNotFound) {
			s.log.Error("device token not revoked", "sub", sess.Sub, "err", err)
			writePage(w, http.StatusInternalServerError, "Not revoked", "The device token could not be revoked; tell the person who runs this server.")
			return
		}
		for _, t := range gone {
			s.outcome("device_token_revoked")
			s.log.Info("device token revoked by its owner", "sub", sess.Sub, "device", t.Name, "id", t.ID)
		}
		if left, err := s.devices.List(func(t devices.Token) bool { return t.Subject == sess.Sub }); err == nil && len(left) == 0 && len(gone) > 0 {
			s.releaseGrant(r.Context(), sess.Sub)
		}
		http.Redirect(w, r, devicesPath, http.StatusSeeOther)
	default:
		writePage(w, http.StatusBadRequest, "Not changed", "Unknown action.")
	}
}

// createToken makes a device token for the signed-in owner and shows it.
func (s *SignIn) createToken(w http.ResponseWriter, sess *session, host, name string) {
	token, t, err := s.devices.Create(name, devices.Owner{
		Subject: sess.Sub, Email: sess.Email, Username: sess.Username, Groups: sess.Groups,
	})
	if err != nil {
		if !errors.Is(err, devices.ErrBadName) && !errors.Is(err, devices.ErrTooMany) {
			s.log.Error("device token not created", "sub", sess.Sub, "err", err)
			err = errors.New("the device token could not be saved; tell the person who runs this server")
		}
		s.renderDevices(w, http.StatusBadRequest, sess, host, `<p class="err">`+htmlEscape(capitalize(err.Error()))+`.</p>`)
		return
	}
	s.outcome("device_token_created")
	s.log.Info("device token created", "sub", sess.Sub, "device", t.Name, "id", t.ID)
	s.renderDevices(w, http.StatusOK, sess, host, s.tokenShown(token, t))
}

// finishBind ends the provider round trip of a first device token: the
// provider's answer must be for the member signed in here, and carry an
// offline token, which is kept as the owner's grant; then the token is
// made and shown.
func (s *SignIn) finishBind(ctx context.Context, w http.ResponseWriter, r *http.Request, host string, v *verifiers, raw string, tok *oauth2.Token, f flow) {
	idt, err := verifyCodeIDToken(ctx, v, raw, tok, f.Nonce)
	if err != nil {
		s.log.Warn("device token binding refused", "err", err)
		s.outcome("refused")
		writePage(w, http.StatusBadRequest, "Not made", `The sign-in provider's answer could not be verified. <a href="`+devicesPath+`">Try again</a>.`)
		return
	}
	sess := s.session(w, r)
	if sess == nil || sess.Sub != f.Bind || idt.Subject != f.Bind {
		writePage(w, http.StatusForbidden, "Not made",
			`The sign-in provider answered for another account than the one signed in here. <a href="`+devicesPath+`">Open the devices page again</a>.`)
		return
	}
	if tok.RefreshToken == "" {
		s.log.Warn("the provider gave no offline token for a device token; does the client allow the offline_access scope?", "sub", sess.Sub)
		writePage(w, http.StatusBadGateway, "Not made", "The sign-in provider did not allow a token for devices. Tell the person who runs this server.")
		return
	}
	if err := s.saveGrant(sess.Sub, tok.RefreshToken); err != nil {
		s.log.Error("offline token not saved", "sub", sess.Sub, "err", err)
		writePage(w, http.StatusInternalServerError, "Not made", "The device token could not be saved; tell the person who runs this server.")
		return
	}
	s.grantChecked.Store(sess.Sub, true)
	s.createToken(w, sess, host, f.Device)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// tokenShown is the one time a token is shown: as text and as a QR code
// (to copy it onto a phone), with what to do with it.
func (s *SignIn) tokenShown(token string, t devices.Token) string {
	header := s.cfg.DeviceTokenHeader
	var b strings.Builder
	fmt.Fprintf(&b, `<div class="new"><h2>Token for %s</h2><p>Copy it now: it is shown only once.</p>`, htmlEscape(t.Name))
	fmt.Fprintf(&b, `<p><code id="token">%s</code></p>`, htmlEscape(token))
	if png, err := qrcode.Encode(token, qrcode.Medium, 256); err == nil {
		fmt.Fprintf(&b, `<p><img alt="QR code of the token" width="256" height="256" src="data:image/png;base64,%s"></p>`,
			base64.StdEncoding.EncodeToString(png))
	}
	fmt.Fprintf(&b, `<p>In the app, add a custom header <code>%s</code> with the token as its value
(Immich: Settings → Advanced → Custom proxy headers). Scan the QR code with the phone to copy the token onto it.</p></div>`,
		htmlEscape(header))
	return b.String()
}

func (s *SignIn) renderDevices(w http.ResponseWriter, status int, sess *session, host, notice string) {
	list, err := s.devices.List(func(t devices.Token) bool { return t.Subject == sess.Sub })
	csrf := htmlEscape(s.csrfToken(sess, host))
	var b strings.Builder
	b.WriteString(notice)
	who := sess.Email
	if who == "" {
		who = sess.Username
	}
	fmt.Fprintf(&b, `<p>Signed in as %s. Apps that cannot sign in themselves (phone and TV apps) use a device token instead; it works as you on this server's family sites until you revoke it.</p>`, htmlEscape(who))
	fmt.Fprintf(&b, `<form method="post" action="%s"><input type="hidden" name="csrf" value="%s"><input type="hidden" name="action" value="create">
<label>Device name <input name="name" maxlength="%d" required placeholder="Mum's TV"></label> <button type="submit">Make a token</button></form>`,
		devicesPath, csrf, devices.MaxNameLen)
	switch {
	case err != nil:
		s.log.Error("device tokens unreadable", "err", err)
		b.WriteString(`<p class="err">The device tokens cannot be read right now.</p>`)
	case len(list) == 0:
		b.WriteString(`<p>You have no device tokens.</p>`)
	default:
		b.WriteString(`<table><tr><th>Device</th><th>Made</th><th></th></tr>`)
		for _, t := range list {
			fmt.Fprintf(&b, `<tr><td>%s</td><td>%s</td><td><form method="post" action="%s"><input type="hidden" name="csrf" value="%s"><input type="hidden" name="action" value="revoke"><input type="hidden" name="id" value="%s"><button type="submit">Revoke</button></form></td></tr>`,
				htmlEscape(t.Name), t.Created.Format("2006-01-02 15:04 MST"), devicesPath, csrf, htmlEscape(t.ID))
		}
		b.WriteString(`</table>`)
	}
	writePage(w, status, "Devices", b.String())
}
