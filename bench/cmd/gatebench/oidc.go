package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// miniOP is a small OpenID Provider on loopback HTTPS for the family route:
// discovery, JWKS, an authorization endpoint that signs the bench user in
// at once, and a token endpoint (code with PKCE S256, refresh) issuing
// RS256 ID tokens. gatehouse trusts it through SSL_CERT_FILE. The session
// the bench uses is made by gatehouse's own sign-in code from a real code
// flow; nothing about gatehouse's cookie format is known here.
type miniOP struct {
	Issuer   string
	CAFile   string
	ClientID string
	Secret   string

	key *rsa.PrivateKey
	srv *http.Server
	mu  sync.Mutex
	// codes and refresh tokens issued
	codes   map[string]opCode
	refresh map[string]bool
}

type opCode struct {
	nonce, challenge, redirect string
	expires                    time.Time
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func randToken() string {
	b := make([]byte, 24)
	rand.Read(b)
	return b64(b)
}

// startOP listens on 127.0.0.1 with a certificate from a fresh CA written
// to dir/op-ca.pem.
func startOP(dir, clientID, secret string) (*miniOP, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gatebench OP CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caFile := dir + "/op-ca.pem"
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		return nil, err
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	op := &miniOP{
		Issuer:   fmt.Sprintf("https://127.0.0.1:%d/realms/bench", ln.Addr().(*net.TCPAddr).Port),
		CAFile:   caFile,
		ClientID: clientID, Secret: secret,
		key:     rsaKey,
		codes:   map[string]opCode{},
		refresh: map[string]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/realms/bench/.well-known/openid-configuration", op.discovery)
	mux.HandleFunc("/realms/bench/certs", op.jwks)
	mux.HandleFunc("/realms/bench/auth", op.authorize)
	mux.HandleFunc("/realms/bench/token", op.token)
	op.srv = &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{{
		Certificate: [][]byte{leafDER}, PrivateKey: leafKey,
	}}}, ErrorLog: nil}
	go op.srv.ServeTLS(ln, "", "")
	return op, nil
}

func (op *miniOP) Close() { op.srv.Close() }

func writeJSONResp(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (op *miniOP) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSONResp(w, 200, map[string]any{
		"issuer":                                op.Issuer,
		"authorization_endpoint":                op.Issuer + "/auth",
		"token_endpoint":                        op.Issuer + "/token",
		"jwks_uri":                              op.Issuer + "/certs",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
	})
}

func (op *miniOP) jwks(w http.ResponseWriter, r *http.Request) {
	pub := op.key.PublicKey
	writeJSONResp(w, 200, map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "bench", "use": "sig", "alg": "RS256",
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

func (op *miniOP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != op.ClientID || q.Get("response_type") != "code" ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "bad authorization request", 400)
		return
	}
	code := randToken()
	op.mu.Lock()
	op.codes[code] = opCode{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"),
		redirect: q.Get("redirect_uri"), expires: time.Now().Add(time.Minute)}
	op.mu.Unlock()
	u, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect_uri", 400)
		return
	}
	v := u.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (op *miniOP) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	} else {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	if id != op.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(op.Secret)) != 1 {
		writeJSONResp(w, 401, map[string]string{"error": "invalid_client"})
		return
	}
	nonce := ""
	switch r.PostFormValue("grant_type") {
	case "authorization_code":
		op.mu.Lock()
		c, ok := op.codes[r.PostFormValue("code")]
		delete(op.codes, r.PostFormValue("code"))
		op.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		if !ok || time.Now().After(c.expires) || b64(sum[:]) != c.challenge || r.PostFormValue("redirect_uri") != c.redirect {
			writeJSONResp(w, 400, map[string]string{"error": "invalid_grant"})
			return
		}
		nonce = c.nonce
	case "refresh_token":
		op.mu.Lock()
		ok := op.refresh[r.PostFormValue("refresh_token")]
		op.mu.Unlock()
		if !ok {
			writeJSONResp(w, 400, map[string]string{"error": "invalid_grant"})
			return
		}
	default:
		writeJSONResp(w, 400, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	now := time.Now()
	claims := map[string]any{
		"iss": op.Issuer, "sub": "bench-user", "aud": op.ClientID, "azp": op.ClientID,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"email": "bench@bench.test", "email_verified": true, "name": "Bench User",
		"preferred_username": "bench", "sid": "bench-session",
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	idt, err := op.sign(claims)
	if err != nil {
		writeJSONResp(w, 500, map[string]string{"error": "server_error"})
		return
	}
	rt := randToken()
	op.mu.Lock()
	op.refresh[rt] = true
	op.mu.Unlock()
	writeJSONResp(w, 200, map[string]any{
		"access_token": randToken(), "token_type": "Bearer", "expires_in": 300,
		"refresh_token": rt, "id_token": idt,
	})
}

func (op *miniOP) sign(claims map[string]any) (string, error) {
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "bench", "typ": "JWT"})
	p, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	in := b64(h) + "." + b64(p)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, op.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return in + "." + b64(sig), nil
}

// familySignIn runs the browser's part of a real sign-in through gatehouse
// (door at doorAddr, family host) and returns the Cookie header value that
// carries the session. It waits up to wait for sign-in to become ready
// (gatehouse discovers the provider in the background).
func familySignIn(doorAddr, host string, op *miniOP, wait time.Duration) (string, error) {
	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(op.CAFile)
	if err != nil {
		return "", err
	}
	roots.AppendCertsFromPEM(caPEM)
	door := benchClient(doorAddr)
	door.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	door.Timeout = 10 * time.Second
	opc := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
		CheckRedirect: door.CheckRedirect, Timeout: 10 * time.Second,
	}
	defer door.CloseIdleConnections()
	defer opc.CloseIdleConnections()

	// 1. /.gatehouse/login: a flow cookie and a redirect to the provider.
	var resp *http.Response
	deadline := time.Now().Add(wait)
	for {
		resp, err = door.Get("http://" + host + "/.gatehouse/login?rd=/")
		if err != nil {
			return "", fmt.Errorf("login: %w", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusFound || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second) // sign-in endpoints are limited to bursts of 20
	}
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, op.Issuer+"/auth") {
		return "", fmt.Errorf("/.gatehouse/login answered %s, Location %q (want a redirect to %s/auth)", resp.Status, loc, op.Issuer)
	}
	var flowCookies []string
	for _, c := range resp.Cookies() {
		flowCookies = append(flowCookies, c.Name+"="+c.Value)
	}
	// 2. The provider signs the user in and sends the browser back.
	resp, err = opc.Get(loc)
	if err != nil {
		return "", fmt.Errorf("provider: %w", err)
	}
	resp.Body.Close()
	cb, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		return "", fmt.Errorf("provider answered %s", resp.Status)
	}
	// 3. The callback on the family host makes the session.
	req, _ := http.NewRequest("GET", "http://"+host+cb.RequestURI(), nil)
	req.Header.Set("Cookie", strings.Join(flowCookies, "; "))
	resp, err = door.Do(req)
	if err != nil {
		return "", fmt.Errorf("callback: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		return "", fmt.Errorf("callback answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var session []string
	for _, c := range resp.Cookies() {
		if c.Value != "" && c.MaxAge >= 0 && !strings.Contains(c.Name, "-flow-") {
			session = append(session, c.Name+"="+c.Value)
		}
	}
	if len(session) == 0 {
		return "", errors.New("callback set no session cookie")
	}
	cookie := strings.Join(session, "; ")
	// 4. The session opens the route; no session does not.
	for _, withCookie := range []bool{true, false} {
		req, _ := http.NewRequest("GET", "http://"+host+"/1k", nil)
		if withCookie {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := door.Do(req)
		if err != nil {
			return "", err
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if withCookie && (resp.StatusCode != 200 || n != 1024) {
			return "", fmt.Errorf("with the session, GET /1k answered %s (%d bytes)", resp.Status, n)
		}
		if withCookie && len(resp.Cookies()) > 0 {
			// wrk would keep sending the old cookie: the measurement
			// would not be of a steady signed-in browser.
			return "", fmt.Errorf("gatehouse renewed the session cookie on a plain request (%s)", resp.Header.Get("Set-Cookie"))
		}
		if !withCookie && resp.StatusCode == 200 {
			return "", errors.New("without a session, GET /1k answered 200: the route is not behind sign-in")
		}
	}
	return cookie, nil
}
