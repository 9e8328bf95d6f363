package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestOversizedHeaders: the door's http.Server, built from the server
// block like main.go builds it, answers 431 to headers over
// max_header_bytes, and never bothers the backend with them.
func TestOversizedHeaders(t *testing.T) {
	for _, c := range []struct {
		server string
		limit  int
	}{
		{"", 64 << 10}, // the default
		{"server {\n  max_header_bytes = \"16KiB\"\n}", 16 << 10},
	} {
		t.Run(strconv.Itoa(c.limit), func(t *testing.T) {
			be := newEchoBackend(t, "app")
			d := startDoor(t, parseConfig(t, appConfig(be.url, c.server)))
			if got := d.cfg.Server.MaxHeaderBytes; got != c.limit {
				t.Fatalf("max_header_bytes parsed as %d, want %d", got, c.limit)
			}
			over := 2*c.limit + 8192
			for name, hdr := range map[string]string{
				"one long header": "X-Big: " + strings.Repeat("a", over) + "\r\n",
				"many headers":    strings.Repeat("X-Many: "+strings.Repeat("m", 90)+"\r\n", over/100),
				"long cookie":     "Cookie: s=" + strings.Repeat("c", over) + "\r\n",
			} {
				conn := d.dial(t)
				// The server may answer before it has read everything;
				// write on the side and ignore the error closing causes.
				go func() {
					_, _ = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: app.example.com\r\n"+hdr+"\r\n")
				}()
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
					t.Errorf("%s: status %d, want 431", name, resp.StatusCode)
				}
			}
			if n := be.hits.Load(); n != 0 {
				t.Errorf("the backend got %d requests with oversized headers", n)
			}

			// Headers well within the limit pass.
			resp, body := d.get(t, "app.example.com", "/", http.Header{"X-Fine": {strings.Repeat("f", c.limit/2)}})
			if resp.StatusCode != http.StatusOK || decodeSeen(t, body).Header.Get("X-Fine") == "" {
				t.Errorf("%d bytes of header: status %d", c.limit/2, resp.StatusCode)
			}
		})
	}
}

// TestSlowHeadersCut: a client that never finishes its headers is cut
// after read_header_timeout (config, not a timing assertion: the test only
// waits for the cut, with the hang guard).
func TestSlowHeadersCut(t *testing.T) {
	t.Parallel()
	be := newEchoBackend(t, "app")
	d := startDoor(t, parseConfig(t, appConfig(be.url, `
server {
  read_header_timeout = "1s"
}`)))
	c := d.dial(t)
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.example.com\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if isTimeout(err) {
		t.Fatalf("the door kept a connection with unfinished headers open for the whole hang guard")
	}
	if len(got) > 0 && !bytes.HasPrefix(got, []byte("HTTP/1.1 4")) {
		t.Errorf("answer to unfinished headers: %q", got)
	}
	if be.hits.Load() != 0 {
		t.Errorf("the backend got a request with unfinished headers")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// stallBackend reads uploads and reports what it got; /think waits after
// reading the body before it answers, /download streams until stopped.
type stallBackend struct {
	url     string
	got     chan received
	think   time.Duration
	stopped chan error
}

func newStallBackend(t *testing.T, think time.Duration) *stallBackend {
	t.Helper()
	b := &stallBackend{got: make(chan received, 4), think: think, stopped: make(chan error, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/download", "/download-sized":
			chunk := bytes.Repeat([]byte("d"), 64<<10)
			if r.URL.Path == "/download-sized" {
				// Of known length, as most large files are.
				w.Header().Set("Content-Length", strconv.Itoa(1<<30))
			}
			var err error
			for err == nil {
				_, err = w.Write(chunk)
			}
			b.stopped <- err
			return
		}
		n, err := io.Copy(io.Discard, r.Body)
		b.got <- received{n, err}
		if err != nil {
			return
		}
		if r.URL.Path == "/think" {
			// Longer than stall_timeout: the upload is done, and the
			// backend is working on it, not stalling.
			select {
			case <-time.After(b.think):
			case <-r.Context().Done():
				http.Error(w, "cancelled while thinking", http.StatusInternalServerError)
				return
			}
		}
		fmt.Fprintf(w, "%d", n)
	}))
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return b
}

const stallConfig = `
server {
  stall_timeout = "1s"
}`

// TestStalledUploadCut: an upload that stops halfway is cut by the stall
// deadline and answered with the 408 page; the backend sees the upload
// fail.
func TestStalledUploadCut(t *testing.T) {
	t.Parallel()
	be := newStallBackend(t, 0)
	d := startDoor(t, parseConfig(t, appConfig(be.url, stallConfig)))
	c := d.dial(t)
	_, err := io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 1000000\r\n\r\n"+
		strings.Repeat("p", 10000))
	if err != nil {
		t.Fatal(err)
	}
	// Now nothing more. The door must give up on its own.
	answer, err := io.ReadAll(c)
	if isTimeout(err) {
		t.Fatalf("the stalled upload was not cut within the hang guard; got %q", answer)
	}
	if bytes.HasPrefix(answer, []byte("HTTP/1.1 2")) {
		t.Errorf("stalled upload answered with success: %q", answer)
	}
	// The client is told why: the 408 page, not a connection cut bare.
	if resp, body := parseRaw(t, answer); resp.StatusCode != http.StatusRequestTimeout || !bytes.Contains(body, []byte("Upload stalled")) {
		t.Errorf("stalled upload: %d %q, want the 408 page", resp.StatusCode, body)
	}
	r := waitFor(t, be.got, "the backend to see the upload end")
	if r.err == nil || r.n >= 1000000 {
		t.Errorf("backend read %d bytes with error %v; want the upload to fail", r.n, r.err)
	}
	t.Logf("client got %q; backend read %d bytes, then: %v", firstLine(string(answer)), r.n, r.err)
}

// TestSlowSteadyUploadCompletes: an upload that trickles in, a chunk every
// 200ms for 3s, is never idle for the stall timeout and completes.
func TestSlowSteadyUploadCompletes(t *testing.T) {
	t.Parallel()
	be := newStallBackend(t, 0)
	d := startDoor(t, parseConfig(t, appConfig(be.url, stallConfig)))
	const chunks, size = 15, 1000
	trickle := func(w io.Writer) error {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < chunks; i++ {
			<-tick.C
			if _, err := w.Write(bytes.Repeat([]byte{'0' + byte(i%10)}, size)); err != nil {
				return err
			}
		}
		return nil
	}

	t.Run("Content-Length", func(t *testing.T) {
		t.Parallel()
		c := d.dial(t)
		if _, err := io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n"+
			"Content-Length: "+strconv.Itoa(chunks*size)+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if err := trickle(c); err != nil {
			t.Fatalf("the door cut a steady upload: %v", err)
		}
		resp, body := parseRaw(t, mustReadAll(t, c))
		if resp.StatusCode != http.StatusOK || string(body) != strconv.Itoa(chunks*size) {
			t.Errorf("status %d %q, want 200 %d", resp.StatusCode, body, chunks*size)
		}
		if r := waitFor(t, be.got, "the backend"); r.n != chunks*size || r.err != nil {
			t.Errorf("backend read %d bytes: %v", r.n, r.err)
		}
	})

	t.Run("chunked", func(t *testing.T) {
		t.Parallel()
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(trickle(pw)) }()
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://app.example.com/upload", pr)
		resp, body := d.do(t, req)
		if resp.StatusCode != http.StatusOK || string(body) != strconv.Itoa(chunks*size) {
			t.Errorf("status %d %q, want 200 %d", resp.StatusCode, body, chunks*size)
		}
		if r := waitFor(t, be.got, "the backend"); r.n != chunks*size || r.err != nil {
			t.Errorf("backend read %d bytes: %v", r.n, r.err)
		}
	})
}

// TestBackendThinkingAfterUpload: once the upload is complete, the stall
// deadline on the body must not go on to cut the request while the
// backend works on its answer for longer than stall_timeout.
func TestBackendThinkingAfterUpload(t *testing.T) {
	t.Parallel()
	be := newStallBackend(t, 2500*time.Millisecond)
	d := startDoor(t, parseConfig(t, appConfig(be.url, stallConfig)))
	req, _ := http.NewRequest("POST", "http://app.example.com/think", strings.NewReader("done uploading"))
	resp, body := d.do(t, req)
	if resp.StatusCode != http.StatusOK || string(body) != "14" {
		t.Errorf("status %d %q, want 200 \"14\"", resp.StatusCode, body)
	}
	if r := waitFor(t, be.got, "the backend"); r.n != 14 || r.err != nil {
		t.Errorf("backend read %d bytes: %v", r.n, r.err)
	}
}

// TestStalledDownloadCut: a client that stops reading a download is cut by
// the stall deadline on writes, and the backend is told to stop.
func TestStalledDownloadCut(t *testing.T) {
	t.Parallel()
	// Of unknown length (chunked) and of known length, as most large
	// files are; the two take different copies on the direct path.
	for _, path := range []string{"/download", "/download-sized"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			be := newStallBackend(t, 0)
			d := startDoor(t, parseConfig(t, appConfig(be.url, stallConfig)))
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://app.example.com"+path, nil)
			resp, err := d.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			// Read nothing more: the backend must be stopped by the door.
			if err := waitFor(t, be.stopped, "the backend to be stopped"); err == nil {
				t.Errorf("backend stopped without a write error")
			}
			// The client finds its download cut short, not hanging.
			n, err := io.Copy(io.Discard, resp.Body)
			if err == nil {
				t.Errorf("the cut download ended cleanly after %d bytes", n)
			}
		})
	}
}

// TestSlowSteadySizedDownloadCompletes: a client that reads a large
// download slowly but steadily — never pausing as long as the stall
// timeout, taking several stall timeouts in all — gets all of it. (It
// caught a splice(2) variant of the copy: the kernel reports a socket
// writable only after a third of its queue drained, which with spliced
// pages took most of a stall period for a client reading 2 MB/s.)
func TestSlowSteadySizedDownloadCompletes(t *testing.T) {
	t.Parallel()
	const size = 16 << 20
	body := bytes.Repeat([]byte("s"), size)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(body)
	}))
	t.Cleanup(backend.Close)
	d := startDoor(t, parseConfig(t, appConfig(backend.URL, stallConfig)))
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://app.example.com/slow", nil)
	resp, err := d.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// 512 KiB every 100 ms: 16 MiB takes over 3 s with stall_timeout 1 s.
	var got int
	buf := make([]byte, 512<<10)
	for {
		n, err := io.ReadFull(resp.Body, buf)
		got += n
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatalf("download cut after %d of %d bytes: %v", got, size, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got != size {
		t.Fatalf("got %d of %d bytes", got, size)
	}
}

func mustReadAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading: %v (got %q)", err, b)
	}
	return b
}

// TestKeepAliveAfterStallDeadline: the stall deadlines of one request do
// not outlive it. A keep-alive connection idle for longer than the stall
// timeout still carries the next request, even one whose answer has no
// body (so nothing of gatehouse's own extends the deadline before the
// server writes it).
func TestKeepAliveAfterStallDeadline(t *testing.T) {
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/empty" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		_, _ = io.WriteString(w, "hello")
	}))
	t.Cleanup(be.Close)
	d := startDoor(t, parseConfig(t, appConfig(be.URL, stallConfig)))
	c := d.dial(t)
	br := bufio.NewReader(c)
	exchange := func(req string) *http.Response {
		t.Helper()
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatalf("%s: %v", firstLine(req), err)
		}
		parsed, err := http.ReadRequest(bufio.NewReader(strings.NewReader(req)))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, parsed) // knows a HEAD answer has no body
		if err != nil {
			t.Fatalf("%s on a kept-alive connection: %v", firstLine(req), err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// A body in each direction sets both deadlines.
	if r := exchange("POST /hello HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 3\r\n\r\nabc"); r.StatusCode != http.StatusOK {
		t.Fatalf("first request: %d", r.StatusCode)
	}
	time.Sleep(1500 * time.Millisecond) // 1.5 × stall_timeout, idle
	if r := exchange("GET /empty HTTP/1.1\r\nHost: app.example.com\r\n\r\n"); r.StatusCode != http.StatusNoContent {
		t.Fatalf("second request: %d", r.StatusCode)
	}
	time.Sleep(1500 * time.Millisecond)
	if r := exchange("HEAD /hello HTTP/1.1\r\nHost: app.example.com\r\n\r\n"); r.StatusCode != http.StatusOK {
		t.Fatalf("third request: %d", r.StatusCode)
	}
}

// TestWebSocketOutlivesStallTimeout: a WebSocket is a hijacked connection
// with no deadlines; an idle one lives on past the stall timeout.
func TestWebSocketOutlivesStallTimeout(t *testing.T) {
	t.Parallel()
	be := newStreamBackend(t)
	d := startDoor(t, parseConfig(t, appConfig(be.url, stallConfig)))
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://app.example.com/ws", &websocket.DialOptions{HTTPClient: d.client})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for i := range 3 {
		msg := fmt.Sprintf("message %d", i)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("%s: %v", msg, err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != "echo:"+msg {
			t.Fatalf("%s: got %q, %v", msg, got, err)
		}
		if i < 2 {
			time.Sleep(1500 * time.Millisecond) // idle for 1.5 × stall_timeout
		}
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
}

// TestPipeliningClientThatNeverReadsIsCut: a client that pipelines
// requests and never reads the answers fills the socket buffers until the
// door's writes block. The stall deadline must cut it then, also when the
// blocked write is the server's final flush of a short answer (gatehouse's
// own pages, header-only answers), or the connection and its goroutine are
// held for as long as the client likes.
func TestPipeliningClientThatNeverReadsIsCut(t *testing.T) {
	t.Parallel()
	// Header-only answers, large so that the buffers fill in fewer
	// requests.
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Fill", strings.Repeat("f", 16<<10))
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(be.Close)
	d := startDoor(t, parseConfig(t, appConfig(be.URL, stallConfig)))
	for _, c := range []struct{ name, req string }{
		{"404 page", "GET / HTTP/1.1\r\nHost: " + unknownHost + "\r\nX-Pad: " + strings.Repeat("p", 1024) + "\r\n\r\n"},
		{"HEAD", "HEAD / HTTP/1.1\r\nHost: app.example.com\r\nX-Pad: " + strings.Repeat("p", 1024) + "\r\n\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := d.dial(t)
			// 40 MB of requests: far more than the socket buffers of both
			// directions hold, so the writes below block until the door
			// reads on, and fail once it gives up on the connection.
			batch := []byte(strings.Repeat(c.req, 1000))
			var err error
			for i := 0; i < 40 && err == nil; i++ {
				_, err = conn.Write(batch)
			}
			if err == nil {
				t.Fatalf("the door read 40 MB of pipelined requests from a client that reads nothing")
			}
			if isTimeout(err) {
				t.Fatalf("the door held a client that never reads for the whole hang guard")
			}
			t.Logf("cut: %v", err)
		})
	}
}
