package proxy

import (
	"net/http"
	"net/netip"
	"time"

	"gatehouse/auth"
)

// Answer is one answered request as the door saw it: what the dashboard's
// recent refusals and the Combined Log Format file are made of.
type Answer struct {
	Door, Route string // Route "" for a request that matched none
	Method      string
	Host, URI   string // URI as the client sent it
	Proto       string
	Status      int
	Bytes       int64
	Client      netip.Addr
	Identity    auth.Identity
	Start       time.Time
	Duration    time.Duration
	// Limit is why a 429 was sent: "rate" or "banned".
	Limit string
	// Forwarded: the backend was asked, so the status is the backend's
	// (or a 502/504 for it), not a refusal of gatehouse's.
	Forwarded          bool
	Referer, UserAgent string
}

// answered hands the request to Options.Answered, when set. r's URL is
// the one sent to the backend by then; the client's is kept in uri.
func (g *Gateway) answered(lw *loggingWriter, r *http.Request, uri, route string, fwd forwarded, id auth.Identity, start time.Time) {
	g.onAnswer(Answer{
		Door: lw.door, Route: route, Method: r.Method, Host: r.Host, URI: uri, Proto: r.Proto,
		Status: lw.code(), Bytes: lw.bytes, Client: fwd.client, Identity: id,
		Start: start, Duration: time.Since(start), Limit: lw.limit, Forwarded: lw.forwarded,
		Referer: r.Header.Get("Referer"), UserAgent: r.Header.Get("User-Agent"),
	})
}
