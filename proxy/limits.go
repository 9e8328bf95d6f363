package proxy

import (
	"net/http"
	"strconv"
	"time"

	"gatehouse/auth"
	"gatehouse/page"
	"gatehouse/ratelimit"
	"gatehouse/routes"
)

// admit applies the matched route's bans and limits, keyed on who is
// asking: a signed-in user or tailnet device when known, else the client
// address. It answers 429 itself and returns false when one refuses; what
// it let through is held in v.permit until the visit ends.
func (h *doorHandler) admit(v *visit) bool {
	rl := v.st.limits[v.m.Route]
	if rl.route == nil && rl.paths == nil {
		return true
	}
	key := ratelimit.ClientKey(limitIdentity(v.id), v.fwd.client)
	now := time.Now()
	for _, b := range rl.bans {
		if banned, left := b.Banned(key, now); banned {
			h.g.tooMany(v.lw, v.routeName, ratelimit.Verdict{Banned: true, RetryAfter: left})
			return false
		}
	}
	pathLim := rl.paths[v.m.Rule]
	if lim := rl.route; lim != nil {
		verdict := lim.Allow(key, now)
		if !verdict.OK {
			h.g.tooMany(v.lw, v.routeName, verdict)
			return false
		}
		v.permit.route = slot{lim: lim, key: key, verdict: verdict}
	}
	if pathLim != nil {
		verdict := pathLim.Allow(key, now)
		if !verdict.OK {
			h.g.tooMany(v.lw, v.routeName, verdict)
			return false
		}
		v.permit.path = slot{lim: pathLim, key: key, verdict: verdict}
	}
	return true
}

// permit is what the limiters let through for one visit: a slot of the
// route's limiter, of the path rule's, and of the sign-in endpoints'
// built-in one. A value, not a closure, so holding it allocates nothing.
type permit struct {
	route, path, gate slot
}

// slot is one limiter's admission of one client; lim is nil when none.
type slot struct {
	lim     *ratelimit.Limiter
	key     ratelimit.Key
	verdict ratelimit.Verdict
}

// release gives back what the visit held, innermost first, telling the
// limiters how the request ended: a ban rule counts failed sign-ins by the
// status of the answer.
func (h *doorHandler) release(v *visit) {
	p := &v.permit
	if p.route.lim == nil && p.path.lim == nil && p.gate.lim == nil {
		return
	}
	code, now := v.lw.code(), time.Now()
	if s := p.path; s.lim != nil && s.lim.Done(s.key, s.verdict, code, now) {
		h.g.log.Warn("client banned after repeated login failures", "route", v.routeName, "client", s.key.String())
		if h.g.metrics != nil {
			h.g.metrics.Bans.WithLabelValues(v.routeName).Inc()
		}
	}
	if s := p.route; s.lim != nil {
		s.lim.Done(s.key, s.verdict, code, now)
	}
	if s := p.gate; s.lim != nil {
		s.lim.Done(s.key, s.verdict, 0, now)
	}
}

// limitIdentity names the client for rate limits when an identity is known.
func limitIdentity(id auth.Identity) string {
	switch {
	case id.Family != nil && id.Family.Subject != "":
		return "family:" + id.Family.Subject
	case id.Tailnet != nil && id.Tailnet.Login != "":
		return "tailnet:" + id.Tailnet.Login + "/" + id.Tailnet.Device
	case id.Tailnet != nil:
		return "tailnet:" + id.Tailnet.Device
	}
	return ""
}

// tooMany answers 429, with Retry-After, for a limit or a ban.
func (g *Gateway) tooMany(w http.ResponseWriter, route string, v ratelimit.Verdict) {
	secs := ratelimit.RetryAfterSeconds(v.RetryAfter)
	reason := "rate"
	body := tooManyPage
	if v.Banned {
		reason, body = "banned", bannedPage
	}
	if lw, ok := w.(*loggingWriter); ok {
		lw.limit = reason
	}
	if g.metrics != nil {
		g.metrics.RateLimited.WithLabelValues(route, reason).Inc()
	}
	w.Header()["Retry-After"] = []string{strconv.Itoa(secs)}
	page.Write(w, http.StatusTooManyRequests, body)
}

// rule is the limiter rule of a limit, bursts filled (routes.Limit.Filled).
func rule(l *routes.Limit) ratelimit.Rule {
	if l == nil {
		return ratelimit.Rule{}
	}
	f := l.Filled()
	return ratelimit.Rule{Rate: f.Rate, Burst: f.Burst, TotalRate: f.TotalRate, TotalBurst: f.TotalBurst, Concurrent: f.Concurrent}
}

// buildLimits makes one limiter per route (from the route's limit block
// over the top-level one) and one per path rule that has a limit or ban.
// Limiters are named by route and path, not by door or host, so a limit is
// one limit however many doors reach it, and a reload that leaves a rule
// alone keeps its clients' buckets.
func buildLimits(reg *ratelimit.Registry, cfg *routes.Config) map[*routes.Route]routeLimits {
	out := map[*routes.Route]routeLimits{}
	for _, r := range cfg.Routes {
		var rl routeLimits
		routeLimit := r.Limit.Over(cfg.Limit)
		if rule := rule(routeLimit); rule != (ratelimit.Rule{}) {
			rl.route = reg.Limiter("route/"+r.Name, rule, nil)
		}
		own := map[*routes.PathRule]*ratelimit.Limiter{}
		for _, p := range r.Paths {
			if p.Limit == nil && p.Ban == nil {
				continue
			}
			var pr ratelimit.Rule
			if p.Limit != nil {
				// A path limit is its own per-client bucket; the route's
				// total and concurrency limits still apply through rl.route.
				pr = rule(&routes.Limit{Rate: p.Limit.Rate, Burst: p.Limit.Burst,
					TotalRate: p.Limit.TotalRate, TotalBurst: p.Limit.TotalBurst, Concurrent: p.Limit.Concurrent})
			}
			var ban *ratelimit.BanRule
			if b := p.Ban; b != nil {
				ban = &ratelimit.BanRule{Failures: b.Failures, Window: b.Window, BanFor: b.BanFor, Statuses: b.Statuses}
			}
			own[p] = reg.Limiter("route/"+r.Name+"/path"+p.Prefix, pr, ban)
			if ban != nil {
				rl.bans = append(rl.bans, own[p])
			}
		}
		// A path without a limit of its own falls under the nearest
		// enclosing path that has one.
		for _, p := range r.Paths {
			var best *routes.PathRule
			for q := range own {
				if routes.HasPathPrefix(p.Prefix, q.Prefix) && (best == nil || len(q.Prefix) > len(best.Prefix)) {
					best = q
				}
			}
			if best != nil {
				if rl.paths == nil {
					rl.paths = map[*routes.PathRule]*ratelimit.Limiter{}
				}
				rl.paths[p] = own[best]
			}
		}
		if rl.route != nil || rl.paths != nil || rl.bans != nil {
			out[r] = rl
		}
	}
	return out
}
