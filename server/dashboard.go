package server

import (
	"net/http"
	"time"

	"gatehouse/dashboard"
	"gatehouse/tailnet"
)

// dashboardHandlers gives the tailnet nodes their handlers: the shared
// node's answers the admin dashboard on its own name and hands every other
// request to its door; a route's own node never serves the dashboard, and
// neither does the Cloudflare door (invariant 1, docs/ARCHITECTURE.md).
type dashboardHandlers struct {
	s *Server
}

func (h dashboardHandlers) TailnetHandler(nodeName string, perRoute bool) http.Handler {
	door := h.s.gw.TailnetHandler(nodeName, perRoute)
	if perRoute {
		return door
	}
	return h.s.dash.Wrap(door)
}

func (s *Server) newDashboard() *dashboard.Dashboard {
	return dashboard.New(dashboard.Options{
		Log: s.log.With("part", "dashboard"), Table: s.gw.Table, Health: s.health,
		Refusals: s.refusals, Reloads: s.reloadLog, Limits: s.limits, Metrics: s.metrics,
		Started: time.Now(),
		Devices: func() dashboard.DeviceTokens {
			if si := s.signIns.live.Load(); si != nil {
				return si
			}
			return nil
		},
		Nodes: func() []dashboard.Node {
			if s.nodes == nil {
				return nil
			}
			var out []dashboard.Node
			for _, n := range s.nodes.Status() {
				out = append(out, nodeOf(n))
			}
			return out
		},
	})
}

func nodeOf(n tailnet.NodeStatus) dashboard.Node {
	return dashboard.Node{Name: n.Name, PerRoute: n.PerRoute, State: n.State, DNSName: n.DNSName,
		Addresses: n.Addresses, CertExpiry: n.CertExpiry, LastError: n.LastError}
}
