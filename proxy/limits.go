package proxy

import (
	"gatehouse/ratelimit"
	"gatehouse/routes"
)

// merge fills the unset fields of a limit from the enclosing one.
func merge(inner, outer *routes.Limit) *routes.Limit {
	if inner == nil {
		return outer
	}
	if outer == nil {
		return inner
	}
	m := *inner
	if m.Rate == 0 {
		m.Rate, m.Burst = outer.Rate, max(m.Burst, outer.Burst)
	}
	if m.Burst == 0 {
		m.Burst = outer.Burst
	}
	if m.TotalRate == 0 {
		m.TotalRate, m.TotalBurst = outer.TotalRate, max(m.TotalBurst, outer.TotalBurst)
	}
	if m.Concurrent == 0 {
		m.Concurrent = outer.Concurrent
	}
	return &m
}

func rule(l *routes.Limit) ratelimit.Rule {
	if l == nil {
		return ratelimit.Rule{}
	}
	r := ratelimit.Rule{Rate: l.Rate, Burst: l.Burst, TotalRate: l.TotalRate, TotalBurst: l.TotalBurst, Concurrent: l.Concurrent}
	if r.Rate > 0 && r.Burst == 0 {
		r.Burst = max(int(r.Rate), 1)
	}
	if r.TotalRate > 0 && r.TotalBurst == 0 {
		r.TotalBurst = max(int(r.TotalRate), 1)
	}
	return r
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
		routeLimit := merge(r.Limit, cfg.Limit)
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
