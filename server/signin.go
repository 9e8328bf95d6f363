package server

import (
	"log/slog"
	"net/http"
	"sync/atomic"

	"gatehouse/proxy"
	"gatehouse/routes"
	"gatehouse/signin"
)

// signInSwitch keeps family sign-in in step with the route table. It is
// built from the oidc block at start and again on every good reload (which
// also re-reads the client secret and cookie key files); the new one keeps
// the old one's discovered provider and revocations when the provider is
// the same, so a reload neither blips family routes to 503 nor brings a
// logged-out session back. If it cannot be built (unreadable secret or key
// file) the running one stays, or family routes fail closed with 503.
type signInSwitch struct {
	gw      *proxy.Gateway
	log     *slog.Logger
	client  *http.Client
	outcome func(string) // gatehouse_signins_total
	limits  signin.LimiterSource
	cur     *signin.SignIn
	// live is cur for readers outside reloads (the dashboard).
	live atomic.Pointer[signin.SignIn]
}

func (s *signInSwitch) update(cfg *routes.OIDCConfig) {
	if cfg == nil {
		if s.cur != nil {
			s.gw.SetSignIn(nil)
			s.live.Store(nil)
			s.cur.Close()
			s.cur = nil
			s.log.Info("family sign-in off: no oidc block; family routes answer 503")
		}
		return
	}
	next, err := signin.New(cfg, signin.Options{
		Table: s.gw.Table, Log: s.log.With("part", "signin"), HTTPClient: s.client, Previous: s.cur,
		Outcome: s.outcome, Limits: s.limits,
	})
	if err != nil {
		if s.cur != nil {
			s.log.Error("family sign-in not updated; the running one stays", "err", err)
		} else {
			s.log.Error("family sign-in unavailable; family routes answer 503", "err", err)
		}
		return
	}
	s.gw.SetSignIn(next)
	s.live.Store(next)
	if s.cur != nil {
		s.cur.Close()
	}
	s.cur = next
}

func (s *signInSwitch) close() {
	if s.cur != nil {
		s.cur.Close()
	}
}
