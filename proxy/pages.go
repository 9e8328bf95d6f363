package proxy

import (
	"fmt"
	"html"
	"net/http"
	"strings"
	"time"

	"gatehouse/auth"
	"gatehouse/page"
	"gatehouse/routes"
)

// notFoundPage is the one answer for an unknown host, a route closed on
// this door and a closed path alike, byte for byte, so nobody can tell them
// apart.
var notFoundPage = page.Render(http.StatusNotFound, "Not found", "There is nothing here.")

var badRequestPage = page.Render(http.StatusBadRequest, "Bad request", "The request could not be understood.")

// ambiguousPathPage answers a path with a segment that begins with ";" or is
// "." or ".." followed by ";…": servers disagree on what it names.
var ambiguousPathPage = page.Render(http.StatusBadRequest, "Ambiguous path",
	"A part of this address begins with <code>;</code>, or is <code>.</code> or <code>..</code> followed by <code>;</code>. "+
		"Some servers read such a part as a different folder than others do, so gatehouse does not pass it on. "+
		"If it is the name of a file or folder, rename it (for example, so that it does not start with <code>..;</code>).")

// malformedBodyPage answers a request whose body broke off or was framed
// wrongly by the client (bad chunked encoding): the client's fault, never
// counted as a backend error.
var malformedBodyPage = page.Render(http.StatusBadRequest, "Bad request body",
	"The body of this request was cut off or malformed. Try again; if it keeps happening, the app sending it is at fault.")

// writeNotFound answers 404 exactly as for an unknown host.
func writeNotFound(w http.ResponseWriter) {
	// Drop anything a handler may have set, so the 404 is identical.
	clear(w.Header())
	page.Write(w, http.StatusNotFound, notFoundPage)
}

// badGatewayPage says a backend did not answer, and since when its health
// check has not reached it when that is known (since non-zero).
func badGatewayPage(route string, since time.Time) []byte {
	msg := "The service <b>" + html.EscapeString(route) + "</b> is not answering right now. It may be restarting; try again in a minute."
	if !since.IsZero() {
		msg = "The service <b>" + html.EscapeString(route) + "</b> has not answered since " +
			html.EscapeString(since.UTC().Format("2006-01-02 15:04:05 UTC")) + " (" + html.EscapeString(time.Since(since).Round(time.Second).String()) +
			"). The person who runs this server can see it on the gatehouse dashboard; try again later."
	}
	return page.Render(http.StatusBadGateway, "Service not answering", msg)
}

func gatewayTimeoutPage(route string, timeout time.Duration) []byte {
	return page.Render(http.StatusGatewayTimeout, "Service too slow",
		"The service <b>"+html.EscapeString(route)+"</b> took the request but did not answer within "+html.EscapeString(timeout.String())+
			". It may be overloaded or stuck; try again in a minute. If it needs longer, raise <code>response_timeout</code> for this route in routes.hcl.")
}

func signInUnavailablePage(route string) []byte {
	return page.Render(http.StatusServiceUnavailable, "Sign-in unavailable",
		"<b>"+html.EscapeString(route)+"</b> needs you to sign in, and sign-in is not available right now. Try again later, or ask the person who runs this server.")
}

// signInUnavailableJSON is the same answer for an API client, as family
// sign-in gives its own 401 and 503 (signin/pages.go).
var signInUnavailableJSON = []byte(`{"error":"sign_in_unavailable","message":"Sign-in is not available right now; try again later."}` + "\n")

// writeSignInUnavailable answers a family request while sign-in cannot
// work (no oidc block, or the provider unreachable): a page for a browser
// navigation, JSON for fetch, XHR and apps, which cannot read a page.
// Both say when to try again.
func writeSignInUnavailable(w http.ResponseWriter, r *http.Request, route string) {
	w.Header()["Retry-After"] = []string{"30"}
	if !auth.BrowserNavigation(r) {
		page.WriteJSON(w, http.StatusServiceUnavailable, signInUnavailableJSON)
		return
	}
	page.Write(w, http.StatusServiceUnavailable, signInUnavailablePage(route))
}

// forbiddenPage says who the client is seen as and why it may not pass.
// A family member signed in with another account than the one that may
// pass gets a button to sign in as someone else: it posts to sign-in's
// logout with the address to return to (again, a request URI), which ends
// the session here and at the provider and starts a fresh sign-in.
func forbiddenPage(route string, id auth.Identity, tc *routes.TailnetConfig, again string) []byte {
	who := "an unknown identity"
	if p := id.Tailnet; p != nil {
		switch {
		case p.Login != "":
			who = p.Login + " on the device " + p.Device
		case len(p.Tags) > 0:
			who = "the tagged device " + p.Device + " (" + strings.Join(p.Tags, ", ") + ")"
		default:
			who = "the device " + p.Device
		}
		if p.Shared {
			who += ", shared in from another tailnet"
		}
	} else if id.Family != nil {
		who = id.Family.Email
	}
	how := "Ask the administrator to add you if you need it."
	if id.Tailnet != nil {
		how = "Only administrators may open it. To get access, the administrator adds your login (or your device's tag) to tailnet.admins in routes.hcl"
		if tc != nil && tc.AdminCapability != "" {
			how += ", or grants you the capability <code>" + html.EscapeString(tc.AdminCapability) + "</code> with <code>{\"role\": \"admin\"}</code> in the tailnet policy file"
		}
		how += ". Tagged devices and devices shared from other tailnets are not members; they get in only by a tag listed in tailnet.admins."
	}
	if f := id.Family; f != nil && f.Device == "" && id.Tailnet == nil {
		how += `</p><form method="post" action="/.gatehouse/logout"><input type="hidden" name="again" value="` +
			html.EscapeString(again) + `"><button type="submit">Sign in as someone else</button></form><p>`
	}
	return page.Render(http.StatusForbidden, "Not allowed",
		"You are seen as <b>"+html.EscapeString(who)+"</b>, which may not open <b>"+html.EscapeString(route)+"</b>. "+how)
}

var whoIsFailedPage = page.Render(http.StatusForbidden, "Not allowed",
	"gatehouse could not tell which tailnet device this request came from, so it was refused. Reconnect to the tailnet and try again.")

// tooLargePage explains a 413; atHome: the route is on the LAN door too.
func tooLargePage(route string, limit int64, door string, atHome bool) []byte {
	msg := "The upload to <b>" + html.EscapeString(route) + "</b> is larger than the " + humanBytes(limit) + " it accepts."
	if door == "cloudflare" {
		msg += " Uploads through the internet pass the Cloudflare tunnel, which accepts at most 100 MB per request. " +
			"For bigger files, connect to the home network's tailnet and use the tailnet address of this service."
		if atHome {
			msg += " At home the same upload works at this same address: on the home network it reaches gatehouse directly (the LAN door), with no tunnel in between."
		}
	}
	return page.Render(http.StatusRequestEntityTooLarge, "Upload too large", msg)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1e6:
		return fmt.Sprintf("%d MB", n/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%d kB", n/1e3)
	}
	return fmt.Sprintf("%d bytes", n)
}

var tooManyPage = page.Render(http.StatusTooManyRequests, "Slow down",
	"Too many requests in a short time. Wait a moment and try again.")

var bannedPage = page.Render(http.StatusTooManyRequests, "Too many failed sign-ins",
	"There were too many failed sign-in attempts from here. Wait a while (see Retry-After) and try again.")

var stalledPage = page.Render(http.StatusRequestTimeout, "Upload stalled",
	"The upload stopped making progress, so it was cut. Try again on a steadier connection.")
