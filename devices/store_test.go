package devices

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestStoreCreateLookupRevoke(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oidc", "devices.json")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tk, err := s.Lookup(Prefix + strings.Repeat("A", 43)); tk != nil || err != nil {
		t.Fatalf("lookup in an empty store: %v %v", tk, err)
	}
	owner := Owner{Subject: "sub-1", Email: "a@example.com", Username: "a", Groups: []string{"/family"}}
	tok, rec, err := s.Create("  Mum's TV ", owner)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, Prefix) || len(tok) != tokenLen || rec.Name != "Mum's TV" {
		t.Fatalf("token %q record %+v", tok, rec)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v %v", fi, err)
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v", di.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), tok[len(Prefix):]) {
		t.Error("token stored in the clear")
	}
	got, err := s.Lookup(tok)
	if err != nil || got == nil || got.Subject != "sub-1" || got.Groups[0] != "/family" {
		t.Fatalf("lookup: %+v %v", got, err)
	}
	// A second store on the same file (another process) sees it, and its
	// revocation is seen by the first at once.
	other, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := other.Lookup(tok); got == nil {
		t.Fatal("other store does not see the token")
	}
	if _, err := other.Revoke(func(t Token) bool { return t.ID == "nope" }); err != ErrNotFound {
		t.Errorf("revoke unknown: %v", err)
	}
	gone, err := other.Revoke(func(t Token) bool { return t.ID == rec.ID })
	if err != nil || len(gone) != 1 {
		t.Fatalf("revoke: %v %v", gone, err)
	}
	if got, _ := s.Lookup(tok); got != nil {
		t.Error("revoked token still accepted by the first store")
	}
	for _, bad := range []string{"", strings.Repeat("x", MaxNameLen+1), "a\nb", "a\x00"} {
		if _, _, err := s.Create(bad, owner); err != ErrBadName {
			t.Errorf("name %q: %v", bad, err)
		}
	}
}

func TestStoreLimitsAndConcurrency(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devices.json")
	a, _ := Open(path, nil)
	b, _ := Open(path, nil)
	var wg sync.WaitGroup
	toks := make([]string, MaxPerOwner)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if i%2 == 1 {
				s = b
			}
			tok, _, err := s.Create("d", Owner{Subject: "one"})
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		}()
	}
	wg.Wait()
	list, err := a.List(nil)
	if err != nil || len(list) != MaxPerOwner {
		t.Fatalf("%d tokens after concurrent creates (lost updates?), %v", len(list), err)
	}
	for _, tok := range toks {
		if got, _ := b.Lookup(tok); got == nil {
			t.Errorf("token lost")
		}
	}
	if _, _, err := a.Create("more", Owner{Subject: "one"}); err != ErrTooMany {
		t.Errorf("over the per-owner limit: %v", err)
	}
	if _, _, err := a.Create("other", Owner{Subject: "two"}); err != nil {
		t.Errorf("another owner: %v", err)
	}
}

// A file that cannot be read refuses every token rather than guessing.
func TestStoreCorruptFileFailsClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devices.json")
	s, _ := Open(path, nil)
	tok, _, err := s.Create("tv", Owner{Subject: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".new", []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Rename(path+".new", path)
	if got, err := s.Lookup(tok); got != nil || err == nil {
		t.Errorf("corrupt file: %v %v", got, err)
	}
	if _, err := Open(path, nil); err == nil {
		t.Error("Open accepted a corrupt file")
	}
}

// Grants live beside the tokens: set, replaced, kept when tokens change
// (also by another process, as `gatehouse tokens` is), and gone with the
// owner's tokens in one change.
func TestStoreGrants(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devices.json")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice := Owner{Subject: "sub-a", Email: "a@example.com"}
	bob := Owner{Subject: "sub-b", Email: "b@example.com"}
	for _, o := range []Owner{alice, alice, bob} {
		if _, _, err := s.Create("TV", o); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetGrant(Grant{Subject: "sub-a", Sealed: "one"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetGrant(Grant{Subject: "sub-a", Sealed: "two"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetGrant(Grant{Subject: "sub-b", Sealed: "b"}); err != nil {
		t.Fatal(err)
	}
	if g, err := s.GrantOf("sub-a"); err != nil || g == nil || g.Sealed != "two" {
		t.Fatalf("alice's grant: %+v %v", g, err)
	}
	// Another process revokes a token: the grants stay.
	other, _ := Open(path, nil)
	if _, err := other.Revoke(func(tk Token) bool { return tk.Subject == "sub-b" }); err != nil {
		t.Fatal(err)
	}
	if gs, _ := s.Grants(); len(gs) != 2 {
		t.Errorf("grants after a revocation elsewhere: %+v", gs)
	}
	gone, err := s.EndOwner("sub-a")
	if err != nil || len(gone) != 2 {
		t.Fatalf("EndOwner: %v %v", gone, err)
	}
	if g, _ := s.GrantOf("sub-a"); g != nil {
		t.Errorf("grant kept after EndOwner: %+v", g)
	}
	if list, _ := s.List(nil); len(list) != 0 {
		t.Errorf("tokens left: %+v", list)
	}
	if err := s.DropGrant("sub-b"); err != nil {
		t.Fatal(err)
	}
	if gs, _ := s.Grants(); len(gs) != 0 {
		t.Errorf("grants left: %+v", gs)
	}
}
