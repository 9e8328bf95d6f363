package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"gatehouse/signin/oidctest"
)

// benchOP is the OpenID Provider for the family route: the tests' own
// (signin/oidctest, Keycloak-shaped, on loopback HTTPS), which signs the
// bench user in at once, as a browser with a live single sign-on session.
// gatehouse trusts it through SSL_CERT_FILE. The session the bench uses is
// made by gatehouse's own sign-in code from a real code flow; nothing
// about gatehouse's cookie format is known here.
type benchOP struct {
	Issuer   string
	CAFile   string
	ClientID string
	Secret   string
	p        *oidctest.Provider
}

const benchUser = "bench"

// startOP starts the provider on 127.0.0.1 and writes the certificate it
// serves to dir/op-ca.pem.
func startOP(dir, domain string) (*benchOP, error) {
	p, err := oidctest.New("127.0.0.1:0", oidctest.Options{
		AutoLogin: benchUser, Domain: domain,
		Fail: func(err error) { fmt.Fprintln(os.Stderr, "gatebench: sign-in provider:", err) },
	})
	if err != nil {
		return nil, err
	}
	p.AddUser(&oidctest.User{Username: benchUser, Email: "bench@" + domain, EmailVerified: true, Name: "Bench"})
	caFile := dir + "/op-ca.pem"
	if err := os.WriteFile(caFile, oidctest.CertificatePEM(), 0o644); err != nil {
		return nil, err
	}
	p.Start()
	return &benchOP{Issuer: p.Issuer, CAFile: caFile, ClientID: oidctest.ClientID, Secret: oidctest.Secret, p: p}, nil
}

func (op *benchOP) Close() { op.p.Stop() }

func familySignIn(doorAddr, host string, op *benchOP, wait time.Duration) (string, error) {
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
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
		Timeout:   10 * time.Second,
	}
	defer door.CloseIdleConnections()
	defer opc.CloseIdleConnections()

	// Steps 1–3: the code flow, as a browser walks it. The sign-in
	// endpoints are limited to bursts of 20, and sign-in may not be ready
	// at once: a login that does not redirect is tried again.
	var cookie string
	deadline := time.Now().Add(wait)
	for {
		cookie, err = oidctest.SignIn(door, opc, "http://"+host, host, op.Issuer)
		if !errors.Is(err, oidctest.ErrLoginNotRedirected) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		return "", err
	}
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
