package forward

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"strconv"
	"testing"
	"time"
)

// stallWriter is the door's writer as forward sees it: an io.ReaderFrom
// (net/http's own, which splices to a plain connection) and a StallKeeper.
type stallWriter struct {
	http.ResponseWriter
	progressed chan struct{}
}

func (w *stallWriter) ReadFrom(src io.Reader) (int64, error) {
	return w.ResponseWriter.(io.ReaderFrom).ReadFrom(src)
}
func (w *stallWriter) StallTimeout() time.Duration { return 40 * time.Millisecond }
func (w *stallWriter) Progressed() {
	select {
	case w.progressed <- struct{}{}:
	default:
	}
}

// spliceDoor is a door in front of backend whose handler gives the direct
// path a stallWriter, unless the request asks ?keeper=no; progressed
// hears from the writer's watch.
func spliceDoor(t *testing.T, backend http.Handler) (url string, progressed chan struct{}) {
	be := httptest.NewServer(backend)
	t.Cleanup(be.Close)
	u, _ := neturl.Parse(be.URL)
	b := NewClient(Options{}).Backend(Route{URL: u, ResponseTimeout: time.Minute, IdleTimeout: time.Minute})
	progressed = make(chan struct{}, 1)
	door := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("keeper") != "no" {
			w = &stallWriter{ResponseWriter: w, progressed: progressed}
		}
		if err := b.Serve(w, r); err != nil {
			t.Error(err)
		}
	}))
	door.Config.ConnContext = WithClientConn
	door.Start()
	t.Cleanup(door.Close)
	return door.URL, progressed
}

// A sized body of a megabyte or more goes by splice, whole and in order,
// the buffered start included; a smaller one, one of unknown length and
// one to a writer that keeps no stall deadline take the copy loop.
func TestSpliceCarriesSizedBodies(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16+7)
	door, _ := spliceDoor(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := big
		if r.URL.Path == "/small" {
			body = big[:spliceMin-1]
		}
		if r.URL.Path != "/chunked" {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.Write(body)
	}))

	for _, c := range []struct {
		path    string
		size    int
		spliced bool
	}{
		{"/big", len(big), true},
		{"/small", spliceMin - 1, false},
		{"/chunked", len(big), false},
		{"/big?keeper=no", len(big), false},
		{"/big", len(big), true}, // on the kept connections of the first
	} {
		before := splicedBodies.Load()
		resp, err := http.Get(door + c.path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || len(got) != c.size || sha256.Sum256(got) != sha256.Sum256(big[:c.size]) {
			t.Fatalf("%s: %d of %d bytes, %v; the body differs", c.path, len(got), c.size, err)
		}
		if spliced := splicedBodies.Load() > before; spliced != c.spliced {
			t.Errorf("%s: spliced %v, want %v", c.path, spliced, c.spliced)
		}
	}
}

// While a spliced body moves, the watch tells the writer so (the door's
// writer then pushes the stall deadline on).
func TestSpliceWatchReportsProgress(t *testing.T) {
	const size = 8 << 20
	door, progressed := spliceDoor(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		chunk := make([]byte, 256<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			w.Write(chunk)
		}
	}))
	resp, err := http.Get(door + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Read slowly until the watch has reported progress at least once.
	buf := make([]byte, 64<<10)
	var n int
	for reported := false; !reported; {
		m, err := resp.Body.Read(buf)
		n += m
		if err != nil {
			t.Fatalf("after %d bytes: %v, and no progress was reported", n, err)
		}
		select {
		case <-progressed:
			reported = true
		case <-time.After(5 * time.Millisecond):
		}
	}
	if rest, err := io.Copy(io.Discard, resp.Body); err != nil || n+int(rest) != size {
		t.Fatalf("got %d of %d bytes: %v", n+int(rest), size, err)
	}
}
