package server

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"gatehouse/ratelimit"
)

// listenMetrics opens the metrics listener: metrics, the ban list and Go
// profiles live on a loopback listener of their own, never behind a door.
func (s *Server) listenMetrics() error {
	cfg := s.opt.Config
	ln := s.opt.MetricsListener
	if cfg.Metrics == nil && ln == nil {
		return nil
	}
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			return fmt.Errorf("metrics listener: %w (change metrics.listen in %s)", err, s.opt.ConfigPath)
		}
	}
	s.metricsLn = ln
	s.closeOnFailure = append(s.closeOnFailure, func() { ln.Close() })
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /bans", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		bans := s.limits.Bans(time.Now())
		if bans == nil {
			bans = []ratelimit.Ban{}
		}
		_ = json.NewEncoder(w).Encode(bans)
	})
	s.metricsSrv = newHTTPServer(mux, cfg.Server, s.log)
	return nil
}
