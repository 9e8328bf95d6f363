package dashboard

import (
	"sort"
	"sync"
	"time"

	"gatehouse/auth"
	"gatehouse/proxy"
)

// Refusal is one request gatehouse itself refused.
type Refusal struct {
	At     time.Time
	Door   string
	Route  string // "" for a host that names no route
	Host   string
	Method string
	URI    string
	Status int
	Why    string // "not found", "forbidden", "rate limited", "banned", …
	Who    string // tailnet login and device, family member, or "" (only the address is known)
	Client string
}

// Refusals keeps the last few refusals of every route.
type Refusals struct {
	perRoute int
	mu       sync.Mutex
	byRoute  map[string][]Refusal // newest last
}

// maxRouteKeys bounds the number of distinct keys kept: refusals of hosts
// outside the table all share the key "" so a scan of random hosts cannot
// grow it, but routes come and go with reloads.
const maxRouteKeys = 1000

// NewRefusals keeps the last perRoute refusals of each route.
func NewRefusals(perRoute int) *Refusals {
	return &Refusals{perRoute: perRoute, byRoute: map[string][]Refusal{}}
}

// Record takes one answered request (proxy.Options.Answered) and keeps it
// when gatehouse refused it: a 4xx that no backend wrote.
func (rs *Refusals) Record(a proxy.Answer) {
	if a.Forwarded || a.Status < 400 || a.Status >= 500 || a.Status == 499 {
		return
	}
	ref := Refusal{
		At: a.Start, Door: a.Door, Route: a.Route, Host: a.Host, Method: a.Method, URI: a.URI,
		Status: a.Status, Why: why(a), Who: who(a.Identity),
	}
	if a.Client.IsValid() {
		ref.Client = a.Client.String()
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	list, ok := rs.byRoute[a.Route]
	if !ok && len(rs.byRoute) >= maxRouteKeys {
		return
	}
	if len(list) >= rs.perRoute {
		list = append(list[:0], list[1:]...)
	}
	rs.byRoute[a.Route] = append(list, ref)
}

// Recent lists the kept refusals, newest first.
func (rs *Refusals) Recent() []Refusal {
	rs.mu.Lock()
	var out []Refusal
	for _, l := range rs.byRoute {
		out = append(out, l...)
	}
	rs.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	return out
}

func why(a proxy.Answer) string {
	switch {
	case a.Status == 429 && a.Limit == "banned":
		return "banned"
	case a.Status == 429:
		return "rate limited"
	case a.Status == 404:
		return "not found"
	case a.Status == 403:
		return "forbidden"
	case a.Status == 401:
		return "sign-in needed or token refused"
	case a.Status == 413:
		return "body too large"
	case a.Status == 400:
		return "bad request"
	}
	return "refused"
}

// who names the identity the door established, "" when there was none.
func who(id auth.Identity) string {
	switch {
	case id.Tailnet != nil:
		p := id.Tailnet
		s := "device " + p.Name
		switch {
		case p.Login != "" && p.Name != "" && p.Name != p.Login:
			// A user's TailnetPeer.Name is their display name
			// (auth.AdminSet.Peer).
			s = p.Login + " (" + p.Name + ")"
		case p.Login != "":
			s = p.Login
		case len(p.Tags) > 0:
			s = p.Name + " (" + p.Tags[0] + ")"
		}
		if p.Shared {
			s += ", shared in"
		}
		return "tailnet: " + s
	case id.Family != nil:
		s := "family: " + id.Family.Email
		if id.Family.Device != "" {
			s += " (device token " + id.Family.Device + ")"
		}
		return s
	}
	return ""
}

// Reload is one reload attempt.
type Reload struct {
	At          time.Time
	Why         string
	OK          bool
	Diagnostics []string // file:line:col: summary; detail
	Changed     []string // settings changed and applied or waiting for a restart
}

// Reloads keeps the last reload attempts.
type Reloads struct {
	max  int
	mu   sync.Mutex
	list []Reload // newest last
}

// NewReloads keeps the last n reloads.
func NewReloads(n int) *Reloads { return &Reloads{max: n} }

// Add records a reload attempt.
func (r *Reloads) Add(rl Reload) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.list) >= r.max {
		r.list = append(r.list[:0], r.list[1:]...)
	}
	r.list = append(r.list, rl)
}

// Recent lists them newest first.
func (r *Reloads) Recent() []Reload {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Reload, len(r.list))
	for i, rl := range r.list {
		out[len(out)-1-i] = rl
	}
	return out
}
