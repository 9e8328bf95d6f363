// Package metrics defines gatehouse's Prometheus metrics and the handler
// that serves them on a listener of their own, never through a door.
package metrics

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is one registry with every gatehouse metric.
type Metrics struct {
	Registry *prometheus.Registry

	Requests       *prometheus.CounterVec   // door, route, code
	Duration       *prometheus.HistogramVec // door, route
	UpstreamErrors *prometheus.CounterVec   // route
	RateLimited    *prometheus.CounterVec   // route, reason (rate, ban)
	Bans           *prometheus.CounterVec   // route
	SignIns        *prometheus.CounterVec   // outcome
	Reloads        *prometheus.CounterVec   // result
	TailnetNodes   *prometheus.GaugeVec     // state
	BackendUp      *prometheus.GaugeVec     // route
	BackendCheck   *prometheus.GaugeVec     // route
}

// New registers every metric. stats reads the rate limiter's store.
func New(stats func() (tracked int, evictions, freed uint64)) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.Requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_requests_total", Help: "Requests answered, by door, route and status code.",
	}, []string{"door", "route", "code"})
	m.Duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gatehouse_request_duration_seconds", Help: "Time to the end of the response, by door and route.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"door", "route"})
	m.UpstreamErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_upstream_errors_total", Help: "Backend failures answered with 502, by route.",
	}, []string{"route"})
	m.RateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_ratelimit_rejections_total", Help: "Requests refused with 429, by route and reason (rate, concurrent, total, banned).",
	}, []string{"route", "reason"})
	m.Bans = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_bans_total", Help: "Clients banned after repeated login failures, by route.",
	}, []string{"route"})
	m.SignIns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_signins_total", Help: "Family sign-in outcomes.",
	}, []string{"outcome"})
	m.Reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_reloads_total", Help: "Route table reloads, by result (ok, rejected).",
	}, []string{"result"})
	m.TailnetNodes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gatehouse_tailnet_nodes", Help: "Tailnet nodes, by state (kept, up).",
	}, []string{"state"})
	m.BackendUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gatehouse_backend_up", Help: "1 if the route's backend passed its last health check, 0 if not.",
	}, []string{"route"})
	m.BackendCheck = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gatehouse_backend_check_seconds", Help: "How long the route's last backend health check took.",
	}, []string{"route"})
	m.Registry.MustRegister(m.Requests, m.Duration, m.UpstreamErrors, m.RateLimited, m.Bans,
		m.SignIns, m.Reloads, m.TailnetNodes, m.BackendUp, m.BackendCheck,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if stats != nil {
		m.Registry.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "gatehouse_ratelimit_clients", Help: "Clients tracked by the rate limiter.",
			}, func() float64 { n, _, _ := stats(); return float64(n) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "gatehouse_ratelimit_evictions_total", Help: "Tracked clients evicted at the cap while still relevant.",
			}, func() float64 { _, e, _ := stats(); return float64(e) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "gatehouse_ratelimit_freed_total", Help: "Idle tracked clients forgotten.",
			}, func() float64 { _, _, f := stats(); return float64(f) }),
		)
	}
	for _, r := range []string{"ok", "rejected"} {
		m.Reloads.WithLabelValues(r)
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// codes holds the label text of every status code, so recording one does
// not format an integer per request.
var codes = func() (c [1000]string) {
	for i := range c {
		c[i] = strconv.Itoa(i)
	}
	return
}()

// Code is the label value of a status code.
func Code(status int) string {
	if status < 0 || status >= len(codes) {
		return "other"
	}
	return codes[status]
}

// RouteDoor holds one route's series on one door, resolved once so that
// recording a request takes no lock: Prometheus vectors guard their label
// lookups with a mutex shared by every request.
type RouteDoor struct {
	vec      *prometheus.CounterVec
	door     string
	route    string
	codes    [600]atomic.Pointer[prometheus.Counter]
	duration prometheus.Observer
}

// ForRouteDoor resolves the series of route on door.
func (m *Metrics) ForRouteDoor(door, route string) *RouteDoor {
	return &RouteDoor{vec: m.Requests, door: door, route: route, duration: m.Duration.WithLabelValues(door, route)}
}

// Observe records one answered request.
func (rd *RouteDoor) Observe(status int, d time.Duration) {
	rd.duration.Observe(d.Seconds())
	if status < 0 || status >= len(rd.codes) {
		rd.vec.WithLabelValues(rd.door, rd.route, Code(status)).Inc()
		return
	}
	slot := &rd.codes[status]
	c := slot.Load()
	if c == nil {
		counter := rd.vec.WithLabelValues(rd.door, rd.route, Code(status))
		slot.Store(&counter)
		c = &counter
	}
	(*c).Inc()
}
