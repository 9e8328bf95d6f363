package signin

import (
	"html"
	"net/http"

	"gatehouse/auth"
	"gatehouse/page"
)

// writePage renders gatehouse's short HTML answers (package page, as the
// doors' pages). body is trusted HTML; escape anything from a request.
func writePage(w http.ResponseWriter, status int, title, body string) {
	page.Write(w, status, page.Render(status, title, body))
}

func htmlEscape(s string) string { return html.EscapeString(s) }

func noStore(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }

// unauthorized is the answer to a client that cannot follow a sign-in
// redirect: 401 with a JSON body that says where a person signs in.
func unauthorized(w http.ResponseWriter, host string) {
	w.Header().Set("WWW-Authenticate", `Cookie realm="gatehouse"`)
	writeJSON(w, http.StatusUnauthorized, map[string]string{
		"error":   "sign_in_required",
		"message": "Sign in with a browser first.",
		"sign_in": "https://" + host + loginPath,
	})
}

// unavailable is the answer while the provider cannot be reached: JSON
// for an API client, a page for a browser (a form POST included).
func unavailable(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", "30")
	if !auth.BrowserNavigation(r) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{
			"error":   "sign_in_unavailable",
			"message": "Sign-in is unavailable, try again shortly.",
		})
		return
	}
	writePage(w, http.StatusServiceUnavailable, "Sign-in unavailable",
		"Sign-in is unavailable, try again shortly. If it stays this way, tell the person who runs this server.")
}

func badFlow(w http.ResponseWriter) {
	writePage(w, http.StatusBadRequest, "Sign-in link expired",
		`This sign-in link has expired, was already used, or was started in another browser. <a href="/">Start again</a>.`)
}
