// Package page renders gatehouse's own short HTML answers — the doors'
// 404, 403, 502… and sign-in's pages alike — with one look and one set of
// security headers, and sends its JSON answers to API clients with the
// same care.
package page

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"net/http"
	"strconv"
)

// style is the pages' only styling, allowed by its hash in the CSP.
const style = `body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}`

// Render returns a page: status and title in the <title>, the title as its
// heading, body as its paragraph. body is trusted HTML: escape anything
// that came with a request.
func Render(status int, title, body string) []byte {
	return fmt.Appendf(nil, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>%d %s</title>
<style>%s</style>
</head><body><h1>%s</h1><p>%s</p></body></html>
`, status, html.EscapeString(title), style, html.EscapeString(title), body)
}

// csp fits pages that are static HTML with one style block: no script
// runs, nothing loads but the inline images (sign-in's QR codes), and no
// other site may frame them. There is no form-action: browsers check it on
// the redirects that follow a form, and sign-out's form goes on to the
// provider's end_session_endpoint.
var csp = "default-src 'none'; style-src 'sha256-" + styleHash() + "'; img-src data:; base-uri 'none'; frame-ancestors 'none'"

func styleHash() string {
	sum := sha256.Sum256([]byte(style))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Shared, never-modified values (capacity-capped, so an append copies):
// no allocation per answer.
var (
	contentType    = []string{"text/html; charset=utf-8"}[:1:1]
	noStore        = []string{"no-store"}[:1:1]
	nosniff        = []string{"nosniff"}[:1:1]
	frameDeny      = []string{"DENY"}[:1:1]
	referrerPolicy = []string{"same-origin"}[:1:1]
	cspValue       = []string{csp}[:1:1]
)

// Write sends a rendered page with status and the headers every page of
// gatehouse carries: never cached, never sniffed, never framed (the CSP's
// frame-ancestors, and X-Frame-Options for browsers without it), no
// referrer beyond this origin. Same-origin, not no-referrer: with
// no-referrer, a form's POST would carry "Origin: null", and sign-in
// checks the Origin of its forms.
func Write(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = contentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["Cache-Control"] = noStore
	h["X-Content-Type-Options"] = nosniff
	h["X-Frame-Options"] = frameDeny
	h["Referrer-Policy"] = referrerPolicy
	h["Content-Security-Policy"] = cspValue
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

var contentTypeJSON = []string{"application/json"}[:1:1]

// WriteJSON sends one of gatehouse's own JSON answers (to an app or a
// fetch that cannot read a page): never cached, never sniffed.
func WriteJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["Cache-Control"] = noStore
	h["X-Content-Type-Options"] = nosniff
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
