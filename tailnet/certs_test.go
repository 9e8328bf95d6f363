package tailnet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"gatehouse/tailnet/tailnettest"
	"io"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestRenewIn(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	leaf := func(issuedAgo, life time.Duration) *x509.Certificate {
		return &x509.Certificate{NotBefore: now.Add(-issuedAgo), NotAfter: now.Add(-issuedAgo + life)}
	}
	const day = 24 * time.Hour
	for _, c := range []struct {
		name string
		leaf *x509.Certificate
		want time.Duration
	}{
		{"no certificate yet: at once", nil, 0},
		{"fresh 90-day certificate: twice a day", leaf(0, 90*day), 12 * time.Hour},
		{"fresh 24 h certificate: twice a day", leaf(0, day), 12 * time.Hour},
		// 90 days, 59 issued: a third (30 days) is left after 60.
		{"90-day certificate a day before its renewal point", leaf(59*day, 90*day), 12 * time.Hour},
		{"90-day certificate an hour before its renewal point", leaf(60*day-time.Hour, 90*day), time.Hour},
		{"24 h certificate issued 15 h ago: at 16 h", leaf(15*time.Hour, day), time.Hour},
		{"past its renewal point: in a minute, not in a busy loop", leaf(70*day, 90*day), time.Minute},
		{"expired: in a minute", leaf(100*day, 90*day), time.Minute},
	} {
		if got := renewIn(c.leaf, now); got != c.want {
			t.Errorf("%s: renewIn = %v, want %v", c.name, got, c.want)
		}
	}
}

// issuer stands in for tailscaled: it hands out a new certificate for the
// node's domain on every call, valid for life from now (negative: already
// expired), or fails.
type issuer struct {
	ca    *tailnettest.CA
	mu    sync.Mutex
	life  time.Duration
	fail  bool
	calls int
}

func (is *issuer) CertPair(ctx context.Context, domain string) ([]byte, []byte, error) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.calls++
	if is.fail {
		return nil, nil, errors.New("control server unreachable")
	}
	notAfter := time.Now().Add(is.life)
	return is.ca.Issue(int64(is.calls), domain, notAfter.Add(-max(is.life, time.Hour)), notAfter)
}

func (is *issuer) callCount() int {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.calls
}

const testDomain = "radarr.tail-scale.ts.net"

// handshake connects to a listener wrapped by c over loopback and returns
// the serial number of the certificate it was shown, or the handshake's
// error.
func handshake(t *testing.T, c *certCache) (*big.Int, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tln := c.tlsListener(ln)
	go func() {
		conn, err := tln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second)) // hang guard
		conn.(*tls.Conn).Handshake()
	}()
	dialer := &net.Dialer{Timeout: 30 * time.Second}
	// The issuer's certificates are self-signed; which one was served is
	// what this test looks at, by serial number.
	conn, err := tls.DialWithDialer(dialer, "tcp", ln.Addr().String(), &tls.Config{ServerName: testDomain, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// The first handshake of a new node waits for its certificate; later ones
// and a restarted node (warm) serve the stored one without asking
// tailscaled, even while it cannot issue.
func TestCertCacheServesStoredCertificateAfterRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	up := &issuer{ca: tailnettest.NewCA(t), life: 90 * 24 * time.Hour}
	first := newCertCache(up, testDomain, dir, quiet())
	first.warm(context.Background())
	serial, err := handshake(t, first)
	if err != nil || serial.Int64() != 1 {
		t.Fatalf("first handshake: serial %v, %v", serial, err)
	}
	if serial, err := handshake(t, first); err != nil || serial.Int64() != 1 || up.callCount() != 1 {
		t.Fatalf("second handshake: serial %v, %v, %d issuer calls (want the cached certificate, 1 call)", serial, err, up.callCount())
	}

	down := &issuer{ca: tailnettest.NewCA(t), fail: true}
	restarted := newCertCache(down, testDomain, dir, quiet())
	restarted.warm(context.Background())
	if serial, err := handshake(t, restarted); err != nil || serial.Int64() != 1 {
		t.Fatalf("after a restart with the issuer down: serial %v, %v", serial, err)
	}
	if down.callCount() != 0 {
		t.Fatalf("the restarted node asked for a certificate %d times instead of using the stored one", down.callCount())
	}
}

// An expired stored certificate is never served: the restarted node asks
// for a new one.
func TestCertCacheSkipsExpiredStoredCertificate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	old := newCertCache(&issuer{ca: tailnettest.NewCA(t), life: -time.Hour}, testDomain, dir, quiet())
	if _, err := old.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	fresh := &issuer{ca: tailnettest.NewCA(t), life: 90 * 24 * time.Hour}
	restarted := newCertCache(fresh, testDomain, dir, quiet())
	restarted.warm(context.Background())
	if restarted.cur.Load() != nil {
		t.Fatal("warm loaded an expired certificate")
	}
	if _, err := handshake(t, restarted); err != nil || fresh.callCount() != 1 {
		t.Fatalf("handshake: %v, %d issuer calls (want a new certificate)", err, fresh.callCount())
	}
	// A failed issuance fails the handshake and keeps nothing.
	failing := newCertCache(&issuer{ca: tailnettest.NewCA(t), fail: true}, testDomain, filepath.Join(t.TempDir(), "certs"), quiet())
	if _, err := handshake(t, failing); err == nil || failing.cur.Load() != nil {
		t.Fatalf("handshake without any certificate: %v", err)
	}
}
