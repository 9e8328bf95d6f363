package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse/devices"
)

// `gatehouse tokens list|revoke` works on the file the gateway uses
// (beside the cookie key file), and a revocation is seen by a store that
// a running gateway holds open.
func TestTokensCommand(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "routes.hcl")
	src := `domain = "example.com"
oidc {
  issuer             = "https://auth.example.com/realms/home"
  client_id          = "gatehouse"
  client_secret_file = "secret"
  cookie_key_file    = "state/oidc/cookie.keys"
}
route "photos" {
  backend = "http://127.0.0.1:2283"
  cloudflare {
    host   = "photos"
    access = "family"
  }
}
`
	if err := os.WriteFile(cfgFile, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	running, err := devices.Open(filepath.Join(dir, "state/oidc/devices.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tv, tvRec, _ := running.Create("Mum's TV", devices.Owner{Subject: "s1", Email: "mum@example.com", Groups: []string{"/family"}})
	phone, _, _ := running.Create("Phone", devices.Owner{Subject: "s2", Email: "kid@example.com"})
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := cli(args, &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errs := run("tokens", "list", "-config", cfgFile)
	if code != 0 || !strings.Contains(out, tvRec.ID) || !strings.Contains(out, "Mum's TV") || !strings.Contains(out, "mum@example.com") ||
		!strings.Contains(out, "kid@example.com") || strings.Contains(out, tv) {
		t.Fatalf("list: %d %s %s", code, out, errs)
	}
	if code, _, _ := run("tokens", "revoke", "-config", cfgFile, "0000"); code != 1 {
		t.Errorf("revoke unknown id: exit %d", code)
	}
	if code, _, _ := run("tokens", "revoke", "-config", cfgFile); code != 2 {
		t.Errorf("revoke without ids: exit %d", code)
	}
	code, out, errs = run("tokens", "revoke", tvRec.ID, "-config", cfgFile)
	if code != 0 || !strings.Contains(out, "revoked "+tvRec.ID) {
		t.Fatalf("revoke: %d %s %s", code, out, errs)
	}
	if got, _ := running.Lookup(tv); got != nil {
		t.Error("the running store still accepts a token revoked by the command")
	}
	if got, _ := running.Lookup(phone); got == nil {
		t.Error("the other token went too")
	}
	if code, out, errs := run("tokens", "revoke", "-config", cfgFile, "-user", "kid@example.com"); code != 0 || !strings.Contains(out, "Phone") {
		t.Fatalf("revoke -user: %d %s %s", code, out, errs)
	}
	if got, _ := running.Lookup(phone); got != nil {
		t.Error("revoke -user left the token")
	}
	if code, _, _ := run("tokens", "frob"); code != 2 {
		t.Errorf("unknown subcommand: exit %d", code)
	}
}
