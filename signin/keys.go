package signin

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// keyring seals and opens gatehouse's cookies. The key file holds one key
// per line (base64 of 32 random bytes); the first seals, every key opens,
// so a new key can be put first while cookies sealed with the previous one
// keep working until they are re-sealed or expire.
type keyring struct {
	// ciphers per purpose, one per key, current first.
	ciphers map[string][]cipher.AEAD
}

// Cookie purposes; each gets its own derived key.
const (
	purposeSession = "session"
	purposeFlow    = "flow"
	purposeCSRF    = "csrf"   // the devices page's form tokens
	purposeGrant   = "grant"  // device token owners' offline tokens, at rest
	purposeTokens  = "tokens" // a session's refresh and ID token (the tokens cookie)
)

const keyFileHeader = `# gatehouse cookie keys. The first key seals new cookies; every key listed
# opens them. To rotate: put a new key (head -c32 /dev/urandom | base64) on
# the first line, keep the old one below it, reload; remove the old one
# after session_lifetime. Keep this file secret (mode 0600).
`

// loadKeys reads the key file, creating it with one new key (mode 0600, in
// a 0700 directory) if it does not exist. warn receives a message for a
// file that others can read.
func loadKeys(path string, warn func(string)) (*keyring, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		data, err = createKeyFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("cookie key file: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 && warn != nil {
		warn(fmt.Sprintf("cookie key file %s has mode %v; anyone who reads it can forge sessions: chmod 600 it", path, fi.Mode().Perm()))
	}
	kr, err := parseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("cookie key file %s: %w", path, err)
	}
	return kr, nil
}

func createKeyFile(path string) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	data := []byte(keyFileHeader + base64.StdEncoding.EncodeToString(key) + "\n")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another gatehouse made it first: use theirs.
		return os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, err
	}
	return data, nil
}

func parseKeys(data []byte) (*keyring, error) {
	kr := &keyring{ciphers: map[string][]cipher.AEAD{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		var key []byte
		var err error
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if key, err = enc.DecodeString(s); err == nil {
				break
			}
		}
		if err != nil || len(key) < 32 {
			return nil, fmt.Errorf("line %d is not a base64 key of at least 32 bytes", line)
		}
		for _, p := range []string{purposeSession, purposeFlow, purposeCSRF, purposeGrant, purposeTokens} {
			a, err := aead(key, p)
			if err != nil {
				return nil, err
			}
			kr.ciphers[p] = append(kr.ciphers[p], a)
		}
	}
	if len(kr.ciphers[purposeSession]) == 0 {
		return nil, errors.New("no key in the file; delete it and gatehouse makes a new one")
	}
	return kr, nil
}

// aead derives the cipher for one purpose from a master key, so a flow
// cookie can never be opened as a session cookie or the other way round.
func aead(master []byte, purpose string) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, master, nil, "gatehouse cookie "+purpose, chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	return chacha20poly1305.NewX(k)
}

var b64 = base64.RawURLEncoding

// seal encrypts and authenticates plaintext with the current key. ad binds
// the cookie to its name and to the provider configuration.
func (k *keyring) seal(purpose string, plaintext, ad []byte) (string, error) {
	a := k.ciphers[purpose][0]
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plaintext)+a.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return b64.EncodeToString(a.Seal(nonce, nonce, plaintext, ad)), nil
}

// open reverses seal with any key; old reports that the key was not the
// current one (the cookie should be re-sealed).
func (k *keyring) open(purpose, value string, ad []byte) (plaintext []byte, old bool, err error) {
	raw, err := b64.DecodeString(value)
	if err != nil {
		return nil, false, errors.New("cookie is not base64")
	}
	for i, a := range k.ciphers[purpose] {
		if len(raw) < a.NonceSize()+a.Overhead() {
			return nil, false, errors.New("cookie too short")
		}
		if pt, err := a.Open(nil, raw[:a.NonceSize()], raw[a.NonceSize():], ad); err == nil {
			return pt, i > 0, nil
		}
	}
	return nil, false, errors.New("cookie does not open with any key (tampered, or sealed with a key no longer listed)")
}
