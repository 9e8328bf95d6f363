package auth

import (
	"net/http"
	"testing"
)

func TestBrowserNavigation(t *testing.T) {
	for _, tc := range []struct {
		method string
		hdr    map[string]string
		want   bool
	}{
		{"GET", map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Accept": "text/html"}, true},
		{"POST", map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}, true}, // a form
		{"GET", map[string]string{"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, true},
		{"GET", map[string]string{"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Accept": "*/*"}, false},
		{"POST", map[string]string{"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Accept": "text/html"}, false},
		{"GET", map[string]string{"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}, false},
		{"GET", map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}, false},
		{"GET", map[string]string{"Accept": "application/json"}, false},
		{"GET", map[string]string{}, false}, // curl, apps
		{"GET", map[string]string{"Accept": "text/html", "X-Requested-With": "XMLHttpRequest"}, false},
	} {
		r, _ := http.NewRequest(tc.method, "https://photos.example.com/", nil)
		for k, v := range tc.hdr {
			r.Header.Set(k, v)
		}
		if got := BrowserNavigation(r); got != tc.want {
			t.Errorf("%s %v: %v, want %v", tc.method, tc.hdr, got, tc.want)
		}
	}
}
