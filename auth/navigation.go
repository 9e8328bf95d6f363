package auth

import (
	"net/http"
	"strings"
)

// BrowserNavigation reports whether a request is a browser loading a page
// (a top-level document, by any method: a link, a typed address, a form
// POST), which can be shown an HTML page. Anything else — fetch/XHR, an
// image, Accept: application/json, a client that does not ask for HTML —
// is an API client, which gets JSON it can read instead.
func BrowserNavigation(r *http.Request) bool {
	h := r.Header
	if h.Get("X-Requested-With") != "" {
		return false
	}
	if mode := h.Get("Sec-Fetch-Mode"); mode != "" {
		// Fetch metadata, sent by every current browser, says exactly.
		dest := h.Get("Sec-Fetch-Dest")
		return mode == "navigate" && (dest == "" || dest == "document")
	}
	// Older clients: a browser asks for HTML when it navigates.
	for _, part := range strings.Split(h.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(mt), "text/html") {
			return true
		}
	}
	return false
}
