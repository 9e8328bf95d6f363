// Package devices keeps the device tokens of family sign-in: long-lived
// random tokens a signed-in family member makes for a phone or TV app
// that cannot follow a sign-in redirect. A token stands for its owner as
// the owner was when it was made (subject, email, user name, groups).
//
// Only a token's SHA-256 is stored, in one JSON file (mode 0600, in a
// 0700 directory) that is always replaced whole by an atomic rename, under
// an flock on a lock file beside it, so the running gateway and the
// `gatehouse tokens` command can both change it. Every lookup checks
// whether the file changed (one stat) and re-reads it if so: a revocation
// by either takes effect on the next request.
package devices

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"
)

// Prefix starts every token, so a token is recognisable in a log or a
// secret scanner.
const Prefix = "ghd_"

// tokenLen is the length of a token: the prefix and 32 random bytes in
// unpadded base64url.
var tokenLen = len(Prefix) + base64.RawURLEncoding.EncodedLen(32)

// Limits on what the file holds.
const (
	MaxNameLen      = 64
	MaxPerOwner     = 50
	MaxTokens       = 10000
	maxFileSize     = 16 << 20
	fileVersion     = 1
	fileMode        = 0o600
	directoryMode   = 0o700
	lockFileSuffix  = ".lock"
	tempFileSuffix  = ".tmp"
	idBytes         = 8
	tokenRandomSize = 32
)

// Token is one device token as stored: its hash, never the token.
type Token struct {
	ID       string    `json:"id"`
	Hash     string    `json:"sha256"`
	Name     string    `json:"name"`
	Subject  string    `json:"sub"`
	Email    string    `json:"email,omitempty"`
	Username string    `json:"username,omitempty"`
	Groups   []string  `json:"groups,omitempty"`
	Created  time.Time `json:"created"`
}

// Grant binds an owner's tokens to the provider: the owner's offline
// (refresh) token, sealed by family sign-in with its own key (this package
// never sees it in the clear), and when the provider last accepted it.
// While the provider accepts the grant the owner's account is alive; when
// it refuses, family sign-in ends the owner's tokens (EndOwner).
type Grant struct {
	Subject string    `json:"sub"`
	Sealed  string    `json:"sealed"`
	Checked time.Time `json:"checked"`
}

// Owner is who a new token stands for.
type Owner struct {
	Subject  string
	Email    string
	Username string
	Groups   []string
}

type fileData struct {
	Version int     `json:"version"`
	Tokens  []Token `json:"tokens"`
	Grants  []Grant `json:"grants,omitempty"`
}

var (
	// ErrNotFound: no such token (or not the caller's).
	ErrNotFound = errors.New("no such device token")
	// ErrBadName: a device name must be 1–64 printable characters.
	ErrBadName = fmt.Errorf("a device name is 1 to %d printable characters", MaxNameLen)
	// ErrTooMany: the owner (or the file) holds the most tokens allowed.
	ErrTooMany = errors.New("too many device tokens; revoke some first")
)

// Store is the device token file.
type Store struct {
	path string
	now  func() time.Time
	mu   sync.Mutex // one reload at a time
	snap atomic.Pointer[snapshot]
}

type snapshot struct {
	stamp  stamp
	tokens []Token
	grants []Grant
	byHash map[[32]byte]*Token
	err    error
}

// stamp identifies one version of the file: it is replaced by rename, so
// a new version has a new inode.
type stamp struct {
	exists bool
	ino    uint64
	dev    uint64
	size   int64
	mtime  int64
}

func stampOf(fi os.FileInfo) stamp {
	st := stamp{exists: true, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino, st.dev = uint64(sys.Ino), uint64(sys.Dev)
	}
	return st
}

// Open returns the store kept in path. A missing file is an empty store;
// it is created with the first token.
func Open(path string, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	s := &Store{path: path, now: now}
	if snap := s.current(); snap.err != nil {
		return nil, snap.err
	}
	return s, nil
}

// Path is the file the store is kept in.
func (s *Store) Path() string { return s.path }

// current returns the file's tokens, re-read if the file changed.
func (s *Store) current() *snapshot {
	var st stamp
	fi, err := os.Stat(s.path)
	switch {
	case err == nil:
		st = stampOf(fi)
	case errors.Is(err, os.ErrNotExist):
	default:
		return &snapshot{err: fmt.Errorf("device tokens: %w", err)}
	}
	if cur := s.snap.Load(); cur != nil && cur.stamp == st && cur.err == nil {
		return cur
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.snap.Load(); cur != nil && cur.stamp == st && cur.err == nil {
		return cur
	}
	snap := load(s.path)
	s.snap.Store(snap)
	return snap
}

func load(path string) *snapshot {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return &snapshot{byHash: map[[32]byte]*Token{}}
	}
	if err != nil {
		return &snapshot{err: fmt.Errorf("device tokens: %w", err)}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return &snapshot{err: fmt.Errorf("device tokens: %w", err)}
	}
	if fi.Size() > maxFileSize {
		return &snapshot{err: fmt.Errorf("device tokens: %s is larger than %d bytes", path, maxFileSize)}
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return &snapshot{err: fmt.Errorf("device tokens: %w", err)}
	}
	fd, err := parse(data)
	if err != nil {
		return &snapshot{err: fmt.Errorf("device tokens: %s: %w", path, err)}
	}
	snap := &snapshot{stamp: stampOf(fi), tokens: fd.Tokens, grants: fd.Grants, byHash: make(map[[32]byte]*Token, len(fd.Tokens))}
	for i := range snap.tokens {
		t := &snap.tokens[i]
		h, err := hex.DecodeString(t.Hash)
		if err != nil || len(h) != sha256.Size {
			return &snapshot{err: fmt.Errorf("device tokens: %s: token %q has a malformed hash", path, t.ID)}
		}
		snap.byHash[[32]byte(h)] = t
	}
	return snap
}

func parse(data []byte) (*fileData, error) {
	var fd fileData
	if len(strings.TrimSpace(string(data))) == 0 {
		return &fileData{Version: fileVersion}, nil
	}
	if err := json.Unmarshal(data, &fd); err != nil {
		return nil, err
	}
	if fd.Version != fileVersion {
		return nil, fmt.Errorf("unknown version %d", fd.Version)
	}
	return &fd, nil
}

// Lookup returns the token's record, or nil if it is unknown or revoked.
// err is set when the file cannot be read: then no token is accepted.
func (s *Store) Lookup(token string) (*Token, error) {
	snap := s.current()
	if snap.err != nil {
		return nil, snap.err
	}
	if len(token) != tokenLen || !strings.HasPrefix(token, Prefix) {
		return nil, nil
	}
	t := snap.byHash[sha256.Sum256([]byte(token))]
	if t == nil {
		return nil, nil
	}
	cp := *t
	cp.Groups = slices.Clone(t.Groups)
	return &cp, nil
}

// List returns the tokens for which keep holds (nil: all), oldest first.
func (s *Store) List(keep func(Token) bool) ([]Token, error) {
	snap := s.current()
	if snap.err != nil {
		return nil, snap.err
	}
	var out []Token
	for _, t := range snap.tokens {
		if keep == nil || keep(t) {
			t.Groups = slices.Clone(t.Groups)
			out = append(out, t)
		}
	}
	return out, nil
}

// CheckName validates a device name.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLen || !utf8.ValidString(name) {
		return ErrBadName
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return ErrBadName
		}
	}
	return nil
}

// Create makes a token for owner named name and returns it: the only
// time the token itself exists outside the client.
func (s *Store) Create(name string, owner Owner) (token string, t Token, err error) {
	name = strings.TrimSpace(name)
	if err := CheckName(name); err != nil {
		return "", Token{}, err
	}
	if owner.Subject == "" {
		return "", Token{}, errors.New("a device token needs an owner")
	}
	var raw [tokenRandomSize]byte
	var id [idBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Token{}, err
	}
	if _, err := rand.Read(id[:]); err != nil {
		return "", Token{}, err
	}
	token = Prefix + base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(token))
	t = Token{
		ID: hex.EncodeToString(id[:]), Hash: hex.EncodeToString(sum[:]), Name: name,
		Subject: owner.Subject, Email: owner.Email, Username: owner.Username,
		Groups: slices.Clone(owner.Groups), Created: s.now().UTC().Truncate(time.Second),
	}
	err = s.update(func(fd *fileData) error {
		if len(fd.Tokens) >= MaxTokens {
			return ErrTooMany
		}
		n := 0
		for _, x := range fd.Tokens {
			if x.Subject == owner.Subject {
				n++
			}
		}
		if n >= MaxPerOwner {
			return ErrTooMany
		}
		fd.Tokens = append(fd.Tokens, t)
		return nil
	})
	if err != nil {
		return "", Token{}, err
	}
	return token, t, nil
}

// Revoke removes the tokens for which match holds and returns them;
// ErrNotFound if there were none.
func (s *Store) Revoke(match func(Token) bool) ([]Token, error) {
	var gone []Token
	err := s.update(func(fd *fileData) error {
		kept := fd.Tokens[:0]
		for _, t := range fd.Tokens {
			if match(t) {
				gone = append(gone, t)
			} else {
				kept = append(kept, t)
			}
		}
		if len(gone) == 0 {
			return ErrNotFound
		}
		fd.Tokens = kept
		return nil
	})
	return gone, err
}

// Grants returns every owner's grant.
func (s *Store) Grants() ([]Grant, error) {
	snap := s.current()
	if snap.err != nil {
		return nil, snap.err
	}
	return slices.Clone(snap.grants), nil
}

// GrantOf returns the owner's grant, or nil if the owner has none.
func (s *Store) GrantOf(subject string) (*Grant, error) {
	snap := s.current()
	if snap.err != nil {
		return nil, snap.err
	}
	for _, g := range snap.grants {
		if g.Subject == subject {
			return &g, nil
		}
	}
	return nil, nil
}

// SetGrant stores the owner's grant, replacing an earlier one.
func (s *Store) SetGrant(g Grant) error {
	if g.Subject == "" || g.Sealed == "" {
		return errors.New("a grant needs an owner and a token")
	}
	g.Checked = g.Checked.UTC()
	return s.update(func(fd *fileData) error {
		fd.Grants = slices.DeleteFunc(fd.Grants, func(x Grant) bool { return x.Subject == g.Subject })
		fd.Grants = append(fd.Grants, g)
		return nil
	})
}

// DropGrant forgets the owner's grant, leaving their tokens.
func (s *Store) DropGrant(subject string) error {
	return s.update(func(fd *fileData) error {
		fd.Grants = slices.DeleteFunc(fd.Grants, func(x Grant) bool { return x.Subject == subject })
		return nil
	})
}

// EndOwner removes the owner's grant and every token of theirs, in one
// change of the file, and returns the tokens.
func (s *Store) EndOwner(subject string) ([]Token, error) {
	var gone []Token
	err := s.update(func(fd *fileData) error {
		fd.Grants = slices.DeleteFunc(fd.Grants, func(x Grant) bool { return x.Subject == subject })
		fd.Tokens = slices.DeleteFunc(fd.Tokens, func(t Token) bool {
			if t.Subject == subject {
				gone = append(gone, t)
				return true
			}
			return false
		})
		return nil
	})
	return gone, err
}

// update changes the file under an exclusive lock: read it fresh, apply
// change, write a new file and rename it into place.
func (s *Store) update(change func(*fileData) error) error {
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, directoryMode); err != nil {
		return fmt.Errorf("device tokens: %w", err)
	}
	lock, err := os.OpenFile(s.path+lockFileSuffix, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return fmt.Errorf("device tokens: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("device tokens: lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck

	snap := load(s.path)
	if snap.err != nil {
		return snap.err
	}
	fd := &fileData{Version: fileVersion, Tokens: slices.Clone(snap.tokens), Grants: slices.Clone(snap.grants)}
	if err := change(fd); err != nil {
		return err
	}
	if fd.Tokens == nil {
		fd.Tokens = []Token{}
	}
	data, err := json.MarshalIndent(fd, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	tmp := s.path + tempFileSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fileMode)
	if err != nil {
		return fmt.Errorf("device tokens: %w", err)
	}
	if err := f.Chmod(fileMode); err != nil {
		f.Close()
		return fmt.Errorf("device tokens: %w", err)
	}
	if os.Geteuid() == 0 {
		// The admin's `gatehouse tokens` runs as root; the gateway (a
		// systemd DynamicUser) owns the state directory and must still
		// read the file.
		if di, err := os.Stat(dir); err == nil {
			if st, ok := di.Sys().(*syscall.Stat_t); ok {
				_ = f.Chown(int(st.Uid), int(st.Gid))
				_ = lock.Chown(int(st.Uid), int(st.Gid))
			}
		}
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("device tokens: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("device tokens: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("device tokens: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("device tokens: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	// The next lookup sees the new file (new inode); drop the cache now
	// so this process does not depend on the stat.
	s.snap.Store(nil)
	return nil
}
