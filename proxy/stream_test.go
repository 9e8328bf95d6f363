package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// streamBackend serves the streaming endpoints: /ws (WebSocket echo), /sse
// (one event, then a second when the test says so), /video (Range
// requests) and /upload (SHA-256 of the body).
type streamBackend struct {
	url       string
	sseNext   chan struct{}
	video     []byte
	continued chan bool // /upload: whether the client asked for 100-continue
}

func newStreamBackend(t *testing.T) *streamBackend {
	t.Helper()
	b := &streamBackend{sseNext: make(chan struct{}), continued: make(chan bool, 1)}
	b.video = make([]byte, 1000)
	for i := range b.video {
		b.video[i] = byte(i * 7)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo:"), msg...)); err != nil {
				return
			}
		}
	})
	// /sse and /ndjson: one event, then the second only when the test
	// says so. Neither has a Content-Length.
	stream := func(contentType, ev1, ev2 string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentType)
			w.Header().Set("Cache-Control", "no-cache")
			rc := http.NewResponseController(w)
			fmt.Fprint(w, ev1)
			if err := rc.Flush(); err != nil {
				return
			}
			select {
			case <-b.sseNext:
			case <-r.Context().Done():
				return
			}
			fmt.Fprint(w, ev2)
		}
	}
	mux.HandleFunc("/sse", stream("text/event-stream", "id: 1\ndata: first\n\n", "id: 2\ndata: second\n\n"))
	mux.HandleFunc("/ndjson", stream("application/x-ndjson", "{\"n\":1}\n\n", "{\"n\":2}\n\n"))
	mux.HandleFunc("/video", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "video/mp4")
		http.ServeContent(w, r, "video.mp4", time.Unix(1700000000, 0), bytes.NewReader(b.video))
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		select {
		case b.continued <- r.Header.Get("Expect") == "100-continue":
		default:
		}
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return b
}

func TestWebSocketEcho(t *testing.T) {
	be := newStreamBackend(t)
	d := startDoor(t, parseConfig(t, appConfig(be.url, "")))
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()

	c, resp, err := websocket.Dial(ctx, "ws://app.example.com/ws", &websocket.DialOptions{HTTPClient: d.client})
	if err != nil {
		t.Fatalf("dial through the door: %v", err)
	}
	defer c.CloseNow()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	c.SetReadLimit(1 << 20)
	big := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
	msgs := []struct {
		typ websocket.MessageType
		msg []byte
	}{
		{websocket.MessageText, []byte("hello")},
		{websocket.MessageText, []byte("second message")},
		{websocket.MessageBinary, []byte{0, 1, 2, 3, 255}},
		{websocket.MessageBinary, big},
		{websocket.MessageText, []byte("last")},
	}
	for i, m := range msgs {
		if err := c.Write(ctx, m.typ, m.msg); err != nil {
			t.Fatalf("message %d: write: %v", i, err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("message %d: read: %v", i, err)
		}
		if typ != m.typ || !bytes.Equal(got, append([]byte("echo:"), m.msg...)) {
			t.Fatalf("message %d: got %v %.40q, want %v echo of %.40q", i, typ, got, m.typ, m.msg)
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Errorf("close: %v", err)
	}
}

// TestStreamsUnbuffered: the backend sends event 2 only after the client
// has received event 1, so a buffering proxy deadlocks (and the hang guard
// fails the test) instead of passing. Server-sent events, and any other
// response of unknown length.
func TestStreamsUnbuffered(t *testing.T) {
	for _, c := range []struct{ path, contentType, ev1, ev2 string }{
		{"/sse", "text/event-stream", "id: 1\ndata: first\n", "id: 2\ndata: second\n"},
		{"/ndjson", "application/x-ndjson", "{\"n\":1}\n", "{\"n\":2}\n"},
	} {
		t.Run(c.contentType, func(t *testing.T) {
			be := newStreamBackend(t)
			d := startDoor(t, parseConfig(t, appConfig(be.url, "")))
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://app.example.com"+c.path, nil)
			req.Header.Set("Accept", c.contentType)
			resp, err := d.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != c.contentType {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			br := bufio.NewReader(resp.Body)
			readEvent := func() string {
				var ev strings.Builder
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						t.Fatalf("reading event (got %q so far): %v", ev.String(), err)
					}
					if line == "\n" {
						return ev.String()
					}
					ev.WriteString(line)
				}
			}
			if ev := readEvent(); ev != c.ev1 {
				t.Fatalf("event 1: %q", ev)
			}
			close(be.sseNext) // only now may the backend send event 2
			if ev := readEvent(); ev != c.ev2 {
				t.Fatalf("event 2: %q", ev)
			}
			if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
				t.Fatalf("after event 2: %q, %v", rest, err)
			}
		})
	}
}

func TestRangeRequest(t *testing.T) {
	be := newStreamBackend(t)
	d := startDoor(t, parseConfig(t, appConfig(be.url, "")))

	resp, body := d.get(t, "app.example.com", "/video", http.Header{"Range": {"bytes=100-199"}})
	if resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("status %d, want 206: %q", resp.StatusCode, body)
	}
	if cr := resp.Header.Get("Content-Range"); cr != "bytes 100-199/1000" {
		t.Errorf("Content-Range %q, want bytes 100-199/1000", cr)
	}
	if cl := resp.Header.Get("Content-Length"); cl != "100" {
		t.Errorf("Content-Length %q, want 100", cl)
	}
	if !bytes.Equal(body, be.video[100:200]) {
		t.Errorf("body is not bytes 100-199 of the file")
	}
	if ar := resp.Header.Get("Accept-Ranges"); ar != "bytes" {
		t.Errorf("Accept-Ranges %q", ar)
	}

	// A suffix range and a range past the end, which the backend answers.
	resp, body = d.get(t, "app.example.com", "/video", http.Header{"Range": {"bytes=-10"}})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, be.video[990:]) {
		t.Errorf("suffix range: status %d, %d bytes", resp.StatusCode, len(body))
	}
	resp, _ = d.get(t, "app.example.com", "/video", http.Header{"Range": {"bytes=5000-"}})
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("range past the end: status %d, want 416", resp.StatusCode)
	}
}

// TestExpectContinue sends the headers of an upload, waits for 100 Continue
// before sending any of the body, then checks the backend got all of it.
func TestExpectContinue(t *testing.T) {
	be := newStreamBackend(t)
	d := startDoor(t, parseConfig(t, appConfig(be.url, "")))
	body := bytes.Repeat([]byte("upload "), 100000)
	sum := sha256.Sum256(body)

	c := d.dial(t)
	_, err := io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: app.example.com\r\n"+
		"Content-Length: "+strconv.Itoa(len(body))+"\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("waiting for 100 Continue: %v", err)
	}
	if resp.StatusCode != http.StatusContinue {
		t.Fatalf("first answer %d, want 100 Continue", resp.StatusCode)
	}
	if _, err := c.Write(body); err != nil {
		t.Fatal(err)
	}
	for resp.StatusCode == http.StatusContinue {
		if resp, err = http.ReadResponse(br, nil); err != nil {
			t.Fatalf("reading the final answer: %v", err)
		}
	}
	got, _ := io.ReadAll(resp.Body)
	if want := fmt.Sprintf("%d %x", len(body), sum); resp.StatusCode != http.StatusOK || string(got) != want {
		t.Fatalf("status %d %q, want 200 %q", resp.StatusCode, got, want)
	}
	if !waitFor(t, be.continued, "the backend's upload handler") {
		t.Errorf("the backend did not see Expect: 100-continue")
	}

	// Go's own client, which also waits for the 100 before the body.
	req, _ := http.NewRequest("POST", "http://app.example.com/upload", bytes.NewReader(body))
	req.Header.Set("Expect", "100-continue")
	resp2, got2 := d.do(t, req)
	if want := fmt.Sprintf("%d %s", len(body), hex.EncodeToString(sum[:])); resp2.StatusCode != http.StatusOK || string(got2) != want {
		t.Fatalf("Go client: status %d %q, want 200 %q", resp2.StatusCode, got2, want)
	}
}
