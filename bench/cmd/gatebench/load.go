package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// loadResult is what one `gatebench load` run prints (one JSON line).
type loadResult struct {
	Kind    string    `json:"kind"`
	OK      bool      `json:"ok"`
	Err     string    `json:"err,omitempty"`
	Bytes   int64     `json:"bytes,omitempty"`
	Seconds float64   `json:"seconds"`
	Count   int       `json:"count,omitempty"` // requests, events or round trips
	Bad     int       `json:"bad,omitempty"`   // wrong status or bytes
	Delays  []float64 `json:"delays_us,omitempty"`
	Info    string    `json:"info,omitempty"` // handshake: the TLS version, group and cipher suite
}

// benchClient dials addr whatever the URL's host, so requests carry the
// route's Host header (gatehouse routes by Host) and go to the target.
func benchClient(addr string) *http.Client {
	d := &net.Dialer{}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		},
		MaxIdleConnsPerHost: 4,
		DisableCompression:  true,
		ReadBufferSize:      64 << 10,
		WriteBufferSize:     64 << 10,
	}}
}

// loadMain runs one client-side measurement and prints its result; the
// harness runs it as its own process so it can be pinned with the backend.
func loadMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: gatebench load blob|range|upload|sse|ws|handshake [flags]")
		return 2
	}
	kind := args[0]
	fs := flag.NewFlagSet("gatebench load "+kind, flag.ExitOnError)
	addr := fs.String("addr", "", "target host:port")
	host := fs.String("host", "app.bench.test", "Host header")
	n := fs.Int("n", 200, "range: requests; sse: events")
	repeat := fs.Int("repeat", 1, "blob: downloads one after another on one connection")
	size := fs.Int64("size", 1<<30, "upload: bytes; blob: bytes to read (0: all)")
	want := fs.String("want", "", "upload: expected SHA-256 (hex)")
	seed := fs.Uint64("seed", 1, "range: random seed")
	maxLen := fs.Int64("maxlen", 256<<10, "range: longest range")
	dur := fs.Duration("d", 2*time.Second, "ws, handshake: duration")
	conc := fs.Int("c", 8, "ws: sockets echoing at once; handshake: connections opened at once")
	certFile := fs.String("cert", "", "handshake: the certificate (PEM) the target must serve")
	curves := fs.String("curves", "x25519", "handshake: key exchange groups offered: x25519, or default (Go's)")
	fs.Parse(args[1:])

	c := benchClient(*addr)
	base := "http://" + *host
	var res loadResult
	switch kind {
	case "blob":
		res = loadBlob(c, base, *size, *repeat)
	case "range":
		res = loadRange(c, base, *n, *seed, *maxLen)
	case "upload":
		res = loadUpload(c, base, *size, *want)
	case "sse":
		res = loadSSE(c, base, *n)
	case "ws":
		res = loadWS(c, "ws://"+*host, *dur, *conc)
	case "handshake":
		res = loadHandshake(*addr, *host, *dur, *conc, *certFile, *curves)
	default:
		fmt.Fprintf(os.Stderr, "gatebench load: unknown kind %q\n", kind)
		return 2
	}
	res.Kind = kind
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// loadBlob downloads /blob n times back to back on one connection (the
// whole of it, or its first limit bytes) and checks every byte.
func loadBlob(c *http.Client, base string, limit int64, n int) loadResult {
	var total loadResult
	start := time.Now()
	for range max(n, 1) {
		r := blobOnce(c, base, limit)
		total.Bytes += r.Bytes
		total.Count += r.Count
		total.Bad += r.Bad
		if !r.OK {
			total.Err = r.Err
			total.Seconds = time.Since(start).Seconds()
			return total
		}
	}
	total.OK, total.Seconds = true, time.Since(start).Seconds()
	return total
}

func blobOnce(c *http.Client, base string, limit int64) loadResult {
	start := time.Now()
	req, _ := http.NewRequest("GET", base+"/blob", nil)
	if limit > 0 && limit < blobSize {
		req.Header.Set("Range", fmt.Sprintf("bytes=0-%d", limit-1))
	}
	resp, err := c.Do(req)
	if err != nil {
		return loadResult{Err: err.Error()}
	}
	defer resp.Body.Close()
	wantLen, wantStatus := int64(blobSize), 200
	if limit > 0 && limit < blobSize {
		wantLen, wantStatus = limit, 206
	}
	if resp.StatusCode != wantStatus {
		return loadResult{Err: "status " + resp.Status, Bad: 1}
	}
	buf := make([]byte, 256<<10)
	var off int64
	ok := true
	for {
		k, err := resp.Body.Read(buf)
		if k > 0 {
			if ok && !matchesPattern(buf[:k], off) {
				ok = false
			}
			off += int64(k)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return loadResult{Err: err.Error(), Bytes: off}
		}
	}
	sec := time.Since(start).Seconds()
	r := loadResult{OK: ok && off == wantLen, Bytes: off, Seconds: sec, Count: 1}
	if !r.OK {
		r.Bad = 1
		r.Err = fmt.Sprintf("got %d bytes (want %d), content ok=%v", off, wantLen, ok)
	}
	return r
}

func loadRange(c *http.Client, base string, n int, seed uint64, maxLen int64) loadResult {
	rnd := rand.New(rand.NewPCG(seed, 6))
	buf := new(bytes.Buffer)
	var total int64
	bad := 0
	var firstErr string
	start := time.Now()
	for i := 0; i < n; i++ {
		off := rnd.Int64N(blobSize - 1)
		length := 1 + rnd.Int64N(maxLen)
		end := min(off+length, blobSize) - 1
		req, _ := http.NewRequest("GET", base+"/blob", nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, end))
		resp, err := c.Do(req)
		if err != nil {
			return loadResult{Err: err.Error(), Count: i, Bad: bad + 1}
		}
		buf.Reset()
		_, err = io.Copy(buf, resp.Body)
		resp.Body.Close()
		wantCR := fmt.Sprintf("bytes %d-%d/%d", off, end, blobSize)
		if err != nil || resp.StatusCode != 206 || resp.Header.Get("Content-Range") != wantCR ||
			int64(buf.Len()) != end-off+1 || !matchesPattern(buf.Bytes(), off) {
			bad++
			if firstErr == "" {
				firstErr = fmt.Sprintf("range %s: status %d, Content-Range %q, %d bytes, err %v",
					wantCR, resp.StatusCode, resp.Header.Get("Content-Range"), buf.Len(), err)
			}
		}
		total += int64(buf.Len())
	}
	return loadResult{OK: bad == 0, Err: firstErr, Bytes: total, Seconds: time.Since(start).Seconds(), Count: n, Bad: bad}
}

func loadUpload(c *http.Client, base string, size int64, want string) loadResult {
	req, _ := http.NewRequest("POST", base+"/upload", io.NopCloser(newPatternReader(size)))
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return loadResult{Err: err.Error(), Bad: 1}
	}
	var got struct {
		Bytes  int64  `json:"bytes"`
		SHA256 string `json:"sha256"`
	}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	sec := time.Since(start).Seconds()
	r := loadResult{Bytes: size, Seconds: sec, Count: 1}
	switch {
	case resp.StatusCode != 200:
		r.Err = "status " + resp.Status
	case err != nil:
		r.Err = "answer: " + err.Error()
	case got.Bytes != size || (want != "" && got.SHA256 != want):
		r.Err = fmt.Sprintf("backend got %d bytes with SHA-256 %s; sent %d bytes with %s", got.Bytes, got.SHA256, size, want)
	default:
		r.OK = true
	}
	if !r.OK {
		r.Bad = 1
	}
	return r
}

func loadSSE(c *http.Client, base string, n int) loadResult {
	start := time.Now()
	resp, err := c.Get(base + "/sse?n=" + strconv.Itoa(n))
	if err != nil {
		return loadResult{Err: err.Error(), Bad: 1}
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return loadResult{Err: "status " + resp.Status, Bad: 1}
	}
	br := bufio.NewReader(resp.Body)
	var delays []float64
	for {
		line, err := br.ReadString('\n')
		if v, ok := strings.CutPrefix(line, "data: "); ok {
			now := time.Now().UnixNano()
			sent, perr := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if perr == nil {
				delays = append(delays, float64(now-sent)/1e3)
			}
		}
		if err != nil {
			break
		}
	}
	r := loadResult{OK: len(delays) == n, Seconds: time.Since(start).Seconds(), Count: len(delays), Delays: delays}
	if !r.OK {
		r.Bad = n - len(delays)
		r.Err = fmt.Sprintf("got %d of %d events", len(delays), n)
	}
	return r
}

// loadWS echoes 32-byte messages back to back on socks WebSockets at once
// and counts the round trips of all of them.
func loadWS(c *http.Client, url string, d time.Duration, socks int) loadResult {
	ctx, cancel := context.WithTimeout(context.Background(), d+10*time.Second)
	defer cancel()
	conns := make([]*websocket.Conn, 0, socks)
	defer func() {
		for _, conn := range conns {
			conn.CloseNow()
		}
	}()
	for range max(socks, 1) {
		conn, _, err := websocket.Dial(ctx, url+"/ws", &websocket.DialOptions{
			HTTPClient: c, CompressionMode: websocket.CompressionDisabled,
		})
		if err != nil {
			return loadResult{Err: err.Error(), Bad: 1}
		}
		conns = append(conns, conn)
	}
	type tally struct {
		count, bad int
		err        error
	}
	tallies := make([]tally, len(conns))
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for i, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := &tallies[i]
			msg := make([]byte, 32)
			fillPattern(msg, int64(i))
			for time.Now().Before(deadline) {
				if t.err = conn.Write(ctx, websocket.MessageBinary, msg); t.err != nil {
					return
				}
				_, got, err := conn.Read(ctx)
				if t.err = err; err != nil {
					return
				}
				if !bytes.Equal(got, msg) {
					t.bad++
				}
				t.count++
			}
		}()
	}
	wg.Wait()
	sec := time.Since(start).Seconds()
	r := loadResult{Seconds: sec}
	for _, t := range tallies {
		r.Count += t.count
		r.Bad += t.bad
		if t.err != nil {
			r.Bad++
			r.Err = t.err.Error()
		}
	}
	for _, conn := range conns {
		conn.Close(websocket.StatusNormalClosure, "")
	}
	r.OK = r.Bad == 0
	return r
}
