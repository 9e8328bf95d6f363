package bench

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/proxy"
	"gatehouse/ratelimit"
	"gatehouse/routes"
	"gatehouse/signin"
	"gatehouse/signin/oidctest"
)

// BenchmarkDoorSignedIn is a 1 KiB GET through the Cloudflare door on an
// open route ("app") and on a family route with a signed-in browser's
// session cookie ("family"), both with the same never-hit limit block, in
// one run: the difference is what sign-in costs a signed-in request. The
// session comes from gatehouse's real code flow with the tests' OpenID
// Provider (signin/oidctest). Profile it with
//
//	go test -run '^$' -bench DoorSignedIn -cpuprofile cpu.out ./bench
func BenchmarkDoorSignedIn(b *testing.B) {
	body := strings.Repeat("x", 1024)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}))
	defer backend.Close()
	door, cookie := signedInDoor(b, backend.URL)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, c := range []struct{ name, host, cookie string }{
		{"open", "app.example.com", ""},
		{"family", "family.example.com", cookie},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", door+"/1k", nil)
					req.Host = c.host
					if c.cookie != "" {
						req.Header.Set("Cookie", c.cookie)
					}
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					n, _ := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || n != 1024 {
						b.Errorf("%s: %s, %d bytes", c.host, resp.Status, n)
						return
					}
				}
			})
		})
	}
}

// signedInDoor starts a gateway with an open and a family route to backend
// and signs a user in through it; it returns the door's URL and the session
// cookie.
func signedInDoor(b *testing.B, backend string) (string, string) {
	op, err := oidctest.New("127.0.0.1:0", oidctest.Options{AutoLogin: "bench", Fail: func(err error) { b.Error(err) }})
	if err != nil {
		b.Fatal(err)
	}
	op.AddUser(&oidctest.User{Username: "bench", Email: "bench@example.com", EmailVerified: true, Name: "Bench"})
	op.Start()
	b.Cleanup(op.Stop)
	dir := b.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte(oidctest.Secret), 0o600); err != nil {
		b.Fatal(err)
	}
	limit := "limit {\n rate = \"1000000/s\"\n burst = 1000000\n concurrent = 100000\n}\n"
	cfg, _, diags := routes.Parse([]byte(fmt.Sprintf(`domain = "example.com"
oidc {
  issuer             = %q
  client_id          = %q
  client_secret_file = %q
  refresh_interval   = "1h"
}
route "app" {
  backend = %[4]q
  cloudflare {
    host   = "app"
    access = "app"
  }
  %[5]s
}
route "family" {
  backend = %[4]q
  cloudflare {
    host   = "family"
    access = "family"
  }
  %[5]s
}
`, op.Issuer, oidctest.ClientID, secret, backend, limit)), filepath.Join(dir, "routes.hcl"))
	if cfg == nil {
		b.Fatal(diags)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw := proxy.New(routes.Compile(cfg), proxy.Options{Logger: quiet, Limits: ratelimit.NewRegistry(100_000)})
	opClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: oidctest.CertPool()}}}
	si, err := signin.New(cfg.OIDC, signin.Options{Table: gw.Table, Log: quiet, HTTPClient: opClient})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(si.Close)
	gw.SetSignIn(si)
	door := httptest.NewServer(gw.Door(routes.Cloudflare))
	b.Cleanup(door.Close)
	for deadline := time.Now().Add(10 * time.Second); !si.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the provider was never discovered")
		}
	}
	c, err := oidctest.SignIn(http.DefaultClient, opClient, door.URL, "family.example.com", op.Issuer)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("session cookie: %d bytes", len(c))
	return door.URL, c
}
