package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// received is what the limited route's backend got of one upload.
type received struct {
	n   int64
	err error
}

// TestBodyLimit: max_body = "1MB" holds with and without Content-Length,
// and the page on the Cloudflare door explains the way around it.
func TestBodyLimit(t *testing.T) {
	const limit = 1_000_000
	got := make(chan received, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		got <- received{n, err}
		if err != nil {
			return
		}
		fmt.Fprintf(w, "%d", n)
	}))
	t.Cleanup(be.Close)
	d := startDoor(t, parseConfig(t, `
domain = "example.com"
route "uploads" {
  backend  = "`+be.URL+`"
  max_body = "1MB"
  cloudflare {
    host   = "up"
    access = "app"
  }
}
`))
	body := func(n int) []byte { return bytes.Repeat([]byte("b"), n) }

	check413 := func(what string, resp *http.Response, page []byte) {
		t.Helper()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("%s: status %d, want 413: %q", what, resp.StatusCode, page)
		}
		for _, s := range []string{"<b>uploads</b>", "1 MB", "100 MB", "tailnet"} {
			if !bytes.Contains(page, []byte(s)) {
				t.Errorf("%s: the 413 page does not mention %q: %s", what, s, page)
			}
		}
	}

	// Within the limit, to the byte: passes.
	for _, n := range []int{500_000, limit} {
		req, _ := http.NewRequest("POST", "http://up.example.com/upload", bytes.NewReader(body(n)))
		resp, page := d.do(t, req)
		if r := waitFor(t, got, "the backend"); resp.StatusCode != http.StatusOK || r.n != int64(n) || r.err != nil {
			t.Fatalf("%d bytes: status %d %q, backend got %d bytes (%v)", n, resp.StatusCode, page, r.n, r.err)
		}
	}

	// 2 MB with Content-Length: refused before the backend hears of it.
	req, _ := http.NewRequest("POST", "http://up.example.com/upload", bytes.NewReader(body(2_000_000)))
	resp, page := d.do(t, req)
	check413("Content-Length", resp, page)
	select {
	case r := <-got:
		t.Errorf("Content-Length: the backend got the request (%d bytes)", r.n)
	default:
	}

	// 2 MB announced with Expect: 100-continue: refused without asking
	// the client for the body.
	c := d.dial(t)
	if _, err := io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: up.example.com\r\nContent-Length: 2000000\r\n"+
		"Expect: 100-continue\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	check413("Expect: 100-continue", resp, page)

	// 2 MB chunked: cut at the limit on the way through.
	req, _ = http.NewRequest("POST", "http://up.example.com/upload", io.NopCloser(bytes.NewReader(body(2_000_000))))
	req.ContentLength = -1
	resp, page = d.do(t, req)
	check413("chunked", resp, page)
	if r := waitFor(t, got, "the backend to see the cut upload"); r.n > limit || r.err == nil {
		t.Errorf("chunked: backend got %d bytes (err %v); want at most %d and a read error", r.n, r.err, limit)
	}
	if strings.Contains(d.log.String(), "backend error") {
		t.Errorf("an upload over the limit was logged as a backend error:\n%s", d.log)
	}

	// The route works after all that.
	req, _ = http.NewRequest("POST", "http://up.example.com/upload", strings.NewReader("small"))
	resp, page = d.do(t, req)
	if r := waitFor(t, got, "the backend"); resp.StatusCode != http.StatusOK || string(page) != "5" || r.n != 5 {
		t.Fatalf("small upload after the refusals: status %d %q", resp.StatusCode, page)
	}
}
