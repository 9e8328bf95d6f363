package tailnet

import (
	"net/netip"
	"slices"
	"time"
)

// NodeStatus is one node as the admin dashboard shows it.
type NodeStatus struct {
	Name     string
	PerRoute bool
	// State: "starting" (joining the tailnet or retrying), "up".
	State     string
	DNSName   string // the node's MagicDNS name with HTTPS, "" without
	Addresses []netip.Addr
	// CertExpiry is when the node's HTTPS certificate ends; zero without one.
	CertExpiry time.Time
	LastError  string
}

// Status lists every node kept, the shared node first.
func (n *Nodes) Status() []NodeStatus {
	n.mu.Lock()
	nodes := make([]*node, 0, len(n.nodes))
	for _, nd := range n.nodes {
		nodes = append(nodes, nd)
	}
	n.mu.Unlock()
	out := make([]NodeStatus, 0, len(nodes))
	for _, nd := range nodes {
		nd.mu.Lock()
		st := nd.status
		certs := nd.certs
		nd.mu.Unlock()
		st.Name, st.PerRoute = nd.name, nd.perRoute
		st.Addresses = slices.Clone(st.Addresses)
		if st.State == "" {
			st.State = "starting"
		}
		if certs != nil {
			if c := certs.cur.Load(); c != nil && c.Leaf != nil {
				st.CertExpiry = c.Leaf.NotAfter
			}
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b NodeStatus) int {
		if a.PerRoute != b.PerRoute {
			if !a.PerRoute {
				return -1
			}
			return 1
		}
		return cmpString(a.Name, b.Name)
	})
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// setStatus records the node's state for Status.
func (nd *node) setStatus(f func(*NodeStatus)) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	f(&nd.status)
}
