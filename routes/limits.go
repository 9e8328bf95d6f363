package routes

// The arithmetic of limits: how a limit inherits from the enclosing one,
// and the bursts an unset burst stands for. The proxy builds its limiters
// from these, and `gatehouse routes` shows what they give, so what is shown
// is what applies.

// Over fills the unset fields of l from outer, the enclosing limit (path
// → route → top level). Either may be nil.
func (l *Limit) Over(outer *Limit) *Limit {
	if l == nil {
		return outer
	}
	if outer == nil {
		return l
	}
	m := *l
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

// Filled is l with its unset bursts given their defaults: a rate without
// a burst allows one second's worth of requests at once (at least one).
func (l Limit) Filled() Limit {
	if l.Rate > 0 && l.Burst == 0 {
		l.Burst = max(int(l.Rate), 1)
	}
	if l.TotalRate > 0 && l.TotalBurst == 0 {
		l.TotalBurst = max(int(l.TotalRate), 1)
	}
	return l
}

// RouteLimit is the limit in force for the route as a whole under the
// top-level limit top: its own block over top's, bursts filled; nil when
// neither limits anything.
func (r *Route) RouteLimit(top *Limit) *Limit {
	l := r.Limit.Over(top)
	if l == nil {
		return nil
	}
	f := l.Filled()
	return &f
}
