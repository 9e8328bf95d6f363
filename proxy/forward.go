package proxy

import (
	"errors"
	"log/slog"
	"net/http"
	"os"
	"time"

	"gatehouse/forward"
	"gatehouse/page"
	"gatehouse/routes"
)

// forward sends the prepared request to the route's backend (the forward
// package). When no answer comes, the client gets a page saying whose
// fault that is.
func (h *doorHandler) forward(v *visit, r *http.Request) {
	v.lw.forwarded = true
	if err := v.st.upstreams[v.m.Route].backend.Serve(v.lw, r); err != nil {
		h.g.forwardFailed(v.lw, r, v.m.Route, h.doorName, err)
	}
}

// forwardFailed answers a request whose forwarding failed, by whose fault
// it failed: the client's body (too large 413, stalled 408, malformed 400,
// never counted against the backend), the client leaving (499, for the log
// only), the backend not answering in time (504) or at all (502).
func (g *Gateway) forwardFailed(w http.ResponseWriter, req *http.Request, r *routes.Route, door string, err *forward.Error) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err.Err, &tooBig) || errors.As(err.Body, &tooBig):
		page.Write(w, http.StatusRequestEntityTooLarge, tooLargePage(r.Name, tooBig.Limit, door, r.Doors[routes.LAN] != nil))
	case errors.Is(err.Body, os.ErrDeadlineExceeded):
		// The upload made no progress for stall_timeout. Reading it
		// failed, which ends the request's context too; the client is
		// still there to read the answer.
		page.Write(w, http.StatusRequestTimeout, stalledPage)
	case req.Context().Err() != nil:
		// The client went away; nobody is left to answer. 499 is only
		// for the access log and metrics.
		w.WriteHeader(499)
	case err.Body != nil:
		g.log.Info("malformed request body", "route", r.Name, "err", err.Body)
		page.Write(w, http.StatusBadRequest, malformedBodyPage)
	case err.Timeout():
		timeout := r.ResponseTimeoutIn(g.state.Load().table.Config.Server)
		g.log.Warn("backend timed out", "route", r.Name, "response_timeout", timeout, "err", err)
		if g.metrics != nil {
			g.metrics.UpstreamErrors.WithLabelValues(r.Name).Inc()
		}
		page.Write(w, http.StatusGatewayTimeout, gatewayTimeoutPage(r.Name, timeout))
	default:
		var since time.Time
		known := false
		if g.health != nil {
			since, known = g.health.DownSince(r.Name)
		}
		// The health check logged the outage once; every visitor's 502
		// during it is not news.
		level := slog.LevelWarn
		if known {
			level = slog.LevelDebug
		}
		g.log.Log(req.Context(), level, "backend error", "route", r.Name, "err", err)
		if g.metrics != nil {
			g.metrics.UpstreamErrors.WithLabelValues(r.Name).Inc()
		}
		page.Write(w, http.StatusBadGateway, badGatewayPage(r.Name, since))
	}
}
