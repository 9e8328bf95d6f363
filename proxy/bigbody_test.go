package proxy_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	bigSize       = 1 << 30
	maxHeapGrowth = 64 << 20
	copyBuf       = 1 << 20
)

// prng is a deterministic pseudo-random stream of n bytes made on the fly:
// the AES-CTR keystream of a fixed key, fast even under -race, and never
// held in memory.
type prng struct {
	ctr  cipher.Stream
	left int64
}

// The SHA-256 of the first 1 GiB of newPRNG(1) and newPRNG(2). Known in
// advance, so only the receiving side has to hash.
const (
	sha256Seed1 = "a1cebf714c0c41fef646abf2ae728dc65a442de0c4068de5f551f199432111f8"
	sha256Seed2 = "71c30174005bb7f93cad95073eac7674aa7f35afc5cf41a2c83f3f4b9331c32e"
)

// zeros is the plaintext the keystream is XORed onto; only ever read.
var zeros = make([]byte, copyBuf)

func newPRNG(seed byte, n int64) *prng {
	key := make([]byte, 16)
	key[0] = seed
	blk, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	return &prng{ctr: cipher.NewCTR(blk, make([]byte, aes.BlockSize)), left: n}
}

func (p *prng) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.left, int64(len(zeros)))]
	p.ctr.XORKeyStream(b, zeros[:len(b)])
	p.left -= int64(len(b))
	return len(b), nil
}

// heapWatch samples HeapInuse until stopped and reports the largest growth
// over the baseline taken after a full collection.
type heapWatch struct {
	base, peak uint64
	samples    int
	stop       chan struct{}
	done       sync.WaitGroup
}

func watchHeap() *heapWatch {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w := &heapWatch{base: ms.HeapInuse, peak: ms.HeapInuse, stop: make(chan struct{})}
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			w.peak = max(w.peak, ms.HeapInuse)
			w.samples++
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// growth stops the watch and returns the peak growth in bytes.
func (w *heapWatch) growth() uint64 {
	close(w.stop)
	w.done.Wait()
	return w.peak - w.base
}

func checkHeap(t *testing.T, what string, w *heapWatch, n int64, took time.Duration) {
	t.Helper()
	g := w.growth()
	t.Logf("%s: %d MiB in %v (%.0f MiB/s); heap in use grew by at most %.1f MiB over %.1f MiB (%d samples)",
		what, n>>20, took.Round(time.Millisecond), float64(n>>20)/took.Seconds(), float64(g)/(1<<20), float64(w.base)/(1<<20), w.samples)
	if w.samples < 2 {
		t.Errorf("%s: only %d heap samples", what, w.samples)
	}
	if g > maxHeapGrowth {
		t.Errorf("%s: heap in use grew by %.1f MiB, more than %d MiB: the proxy buffers bodies", what, float64(g)/(1<<20), maxHeapGrowth>>20)
	}
}

func TestBigDownload(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB transfer")
	}
	sent := make(chan error, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(bigSize))
		_, err := io.CopyBuffer(struct{ io.Writer }{w}, newPRNG(1, bigSize), make([]byte, copyBuf))
		sent <- err
	}))
	t.Cleanup(be.Close)
	d := startDoor(t, parseConfig(t, appConfig(be.URL, "")))

	ctx, cancel := context.WithTimeout(context.Background(), 4*hangGuard)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://app.example.com/big", nil)
	w := watchHeap()
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != bigSize {
		t.Fatalf("status %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(h, struct{ io.Reader }{resp.Body}, make([]byte, copyBuf))
	took := time.Since(start)
	if err != nil || n != bigSize {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	checkHeap(t, "download", w, n, took)
	if err := waitFor(t, sent, "the backend"); err != nil {
		t.Fatalf("backend: %v", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha256Seed1 {
		t.Fatalf("download sha256 %s, backend sent %s", got, sha256Seed1)
	}
}

func TestBigUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB transfer")
	}
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.CopyBuffer(h, struct{ io.Reader }{r.Body}, make([]byte, copyBuf))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	}))
	t.Cleanup(be.Close)
	d := startDoor(t, parseConfig(t, appConfig(be.URL, "")))

	ctx, cancel := context.WithTimeout(context.Background(), 4*hangGuard)
	defer cancel()
	src := newPRNG(2, bigSize)
	req, _ := http.NewRequestWithContext(ctx, "PUT", "http://app.example.com/big", io.NopCloser(src))
	req.ContentLength = bigSize
	w := watchHeap()
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	checkHeap(t, "upload", w, bigSize, took)
	got, _ := strings.CutSuffix(string(body), "\n")
	if want := fmt.Sprintf("%d %s", bigSize, sha256Seed2); resp.StatusCode != http.StatusOK || got != want {
		t.Fatalf("status %d, backend got %q, client sent %q", resp.StatusCode, got, want)
	}
}
