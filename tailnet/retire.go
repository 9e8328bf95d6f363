package tailnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"tailscale.com/tsnet"

	"gatehouse/routes"
)

// leftoverUpTimeout bounds the wait for a leftover node to come up before
// it logs out.
const leftoverUpTimeout = 15 * time.Second

// logoutTimeout bounds the wait for the control server to take a logout.
const logoutTimeout = 30 * time.Second

// retire takes a node off the tailnet for good: its servers drain, it logs
// out of the control server (which expires its key, so it drops out of
// every peer's device list) and its state directory goes, so a route
// added back later joins as a new node. A node that cannot log out (the
// control server does not answer) keeps its state and the log says how to
// remove it by hand.
func (nd *node) retire() {
	nd.drain()
	nd.mu.Lock()
	s := nd.srv
	nd.mu.Unlock()
	var err error
	if s != nil {
		err = logout(nd.parent.ctx, s)
	} else {
		err = errors.New("the node never started")
	}
	nd.cancel()
	<-nd.done
	nd.mu.Lock()
	s, nd.srv = nd.srv, nil
	nd.mu.Unlock()
	if s != nil {
		s.Close()
	}
	nd.parent.forget(nd.name, nd.dir(), err)
}

// logout logs a started node out of the control server. A node that never
// joined has nothing to log out of and returns nil. Stopping gatehouse
// (ctx) ends the wait.
func logout(ctx context.Context, s *tsnet.Server) error {
	lc, err := s.LocalClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, logoutTimeout)
	defer cancel()
	return lc.Logout(ctx)
}

// forget removes a logged-out node's state, or says why it stays.
func (n *Nodes) forget(name, dir string, logoutErr error) {
	log := n.opts.Log.With("node", name)
	if logoutErr != nil {
		log.Warn("tailnet node could not log out of the control server; its state stays. Remove the device from the tailnet "+
			"(Tailscale: admin console, Machines, Remove; Headscale: headscale nodes delete) and then its state directory",
			"control", controlName(n.cfg.ControlURL), "dir", dir, "err", logoutErr)
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		log.Warn("tailnet node logged out, but its state directory could not be removed", "dir", dir, "err", err)
		return
	}
	log.Info("tailnet node logged out of the control server and its state removed; "+
		"Tailscale's admin console may still list it as logged out until you remove it there", "dir", dir)
}

// leftovers lists the node directories under state_dir that hold a node's
// state but that the table names no node for: routes removed (or closed on
// the tailnet, or renamed) while gatehouse was not running.
func leftovers(cfg *routes.TailnetConfig, want map[string]bool) []string {
	entries, err := os.ReadDir(cfg.StateDir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if _, wanted := want[e.Name()]; wanted || !e.IsDir() {
			continue
		}
		if joined(cfg, e.Name()) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out
}

// retireLeftovers logs out, in the background, the nodes whose routes went
// away while gatehouse was not running, as a reload would have. Each is
// started from its state just long enough to log out.
func (n *Nodes) retireLeftovers(t *routes.Table) {
	if n.opts.Dir != nil {
		return // state lives elsewhere; nothing of ours to scan
	}
	for _, name := range leftovers(n.cfg, Wanted(n.cfg, t)) {
		n.opts.Log.Info("tailnet node leaving the tailnet: state is left from a route that is gone or closed there", "node", name)
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.forget(name, nodeDir(n.cfg, name), n.logoutFromState(name))
			n.settle.changed()
		}()
	}
}

func (n *Nodes) logoutFromState(name string) error {
	nd := n.newNode(name, true)
	defer nd.cancel()
	s, err := nd.newServer()
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Start(); err != nil {
		return fmt.Errorf("starting from its state: %w", err)
	}
	// A logout sent while the node is still logging in races inside
	// tsnet's control client (the race detector caught it): let it come
	// up first, for a while; one that cannot still gets the logout.
	upCtx, cancel := context.WithTimeout(n.ctx, leftoverUpTimeout)
	_, _ = s.Up(upCtx)
	cancel()
	return logout(n.ctx, s)
}
