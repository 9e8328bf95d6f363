package signin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// provider is the discovered OpenID Provider: its endpoints and the
// verifiers built on its key set (which follows key rotation by itself:
// an unknown key id makes it fetch the JWKS again).
type provider struct {
	op         *oidc.Provider
	endpoint   oauth2.Endpoint
	endSession string
	revocation string // RFC 7009 revocation_endpoint; "" if none
	wellKnown  string
}

// discover fetches the discovery document. It never blocks startup: the
// watch loop calls it in the background until it succeeds.
func discover(ctx context.Context, issuer string, client *http.Client) (*provider, error) {
	// The provider keeps the client for its key set; the context only
	// bounds this request.
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, client), issuer)
	if err != nil {
		return nil, err
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
		Revocation string `json:"revocation_endpoint"`
	}
	_ = op.Claims(&extra)
	p := &provider{
		op:         op,
		endpoint:   op.Endpoint(),
		endSession: extra.EndSession,
		revocation: extra.Revocation,
		wellKnown:  strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration",
	}
	p.endpoint.AuthStyle = oauth2.AuthStyleInHeader
	if !strings.HasPrefix(p.endpoint.AuthURL, "https://") || !strings.HasPrefix(p.endpoint.TokenURL, "https://") {
		return nil, fmt.Errorf("the provider's endpoints must be https (authorization %q, token %q)", p.endpoint.AuthURL, p.endpoint.TokenURL)
	}
	return p, nil
}

// probe asks the provider whether it is up, cheaply.
func probe(ctx context.Context, p *provider, client *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.wellKnown, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("discovery answered %s", resp.Status)
	}
	return nil
}

// watch keeps Ready() true exactly while the provider answers: it
// discovers in the background, retries with exponential backoff and jitter
// while the provider is unreachable, and probes it periodically once up.
// markDown (a failed token request) makes it look again at once.
func (s *SignIn) watch(ctx context.Context) {
	defer close(s.done)
	delay := s.opt.RetryMin
	for {
		var err error
		cctx, cancel := context.WithTimeout(ctx, s.opt.RequestTimeout)
		if p := s.prov.Load(); p == nil {
			var np *provider
			if np, err = discover(cctx, s.cfg.Issuer, s.client); err == nil {
				s.prov.Store(np)
				s.log.Info("sign-in provider discovered", "issuer", s.cfg.Issuer)
			}
		} else {
			err = probe(cctx, p, s.client)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		var wait time.Duration
		if err == nil {
			if !s.healthy.Swap(true) && s.everDown.Load() {
				s.log.Info("sign-in provider is back", "issuer", s.cfg.Issuer)
			}
			delay = s.opt.RetryMin
			wait = s.opt.ProbeEvery
		} else {
			if s.healthy.Swap(false) || !s.everDown.Swap(true) {
				s.log.Warn("sign-in provider unreachable; new sign-ins answer 503 until it is back, sessions renewed within outage_grace keep working",
					"issuer", s.cfg.Issuer, "err", err, "retry_in", delay, "outage_grace", s.cfg.OutageGrace)
			}
			// Full jitter keeps many gateways from retrying in step.
			wait = delay/2 + rand.N(delay/2+1)
			delay = min(delay*2, s.opt.RetryMax)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-s.kick:
			t.Stop()
		}
	}
}

// markDown records that the provider failed a request: sign-in is
// unavailable until the watch loop sees it answer again.
func (s *SignIn) markDown(err error) {
	if s.healthy.Swap(false) {
		s.log.Warn("sign-in provider request failed; checking it", "err", err)
	}
	s.everDown.Store(true)
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// providerTrouble tells a provider that is down or broken (network error,
// 5xx) from one that refused this request (4xx: the grant is no good).
func providerTrouble(err error) bool {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode >= 500
	}
	return err != nil
}
