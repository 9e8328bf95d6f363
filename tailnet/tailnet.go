// Package tailnet runs gatehouse's embedded Tailscale nodes: a shared node
// named by tailnet.hostname, and one node per route that asks for its own
// MagicDNS name. Each node serves HTTPS on :443 with its tailnet
// certificate and redirects :80 to it.
package tailnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"tailscale.com/client/local"
	"tailscale.com/envknob"
	"tailscale.com/logtail"
	"tailscale.com/tsnet"

	"gatehouse/auth"
	"gatehouse/routes"
)

// Handlers gives the HTTP handler for a node: the shared node (route "")
// routes by Host; a per-route node always serves its own route.
type Handlers interface {
	TailnetHandler(nodeName string, perRoute bool) http.Handler
}

// Options configure the node set.
type Options struct {
	Handlers Handlers
	Log      *slog.Logger
	// Server is applied to each node's HTTP servers.
	Server routes.ServerConfig
	// Started, if set, runs after each node's tsnet.Server has started and
	// before it serves (tests inject certificates here).
	Started func(name string, s *tsnet.Server)
	// Dir, if set, names the state directory of node name; by default it
	// is the node's own directory under tailnet.state_dir (nodeDir).
	Dir func(name string) string
}

// Nodes is the running set of tailnet nodes.
type Nodes struct {
	cfg  *routes.TailnetConfig
	opts Options
	ctx  context.Context
	stop context.CancelFunc

	mu    sync.Mutex
	nodes map[string]*node
	wg    sync.WaitGroup
	// plainHTTP says once per process, not once per node, that the nodes
	// serve plain HTTP.
	plainHTTP sync.Once
	settle    memorySettler
}

// Enabled reports whether the tailnet door can start without a person:
// there is a key, an OAuth client secret, or saved state. When it cannot,
// why says how to turn it on.
func Enabled(cfg *routes.TailnetConfig) (ok bool, why string) {
	if cfg == nil {
		return false, "no tailnet block in the route table"
	}
	if cfg.AuthKeyFile != "" || cfg.ClientSecretFile != "" || os.Getenv("TS_AUTHKEY") != "" || os.Getenv("TS_AUTH_KEY") != "" {
		return true, ""
	}
	if joined(cfg, cfg.Hostname) {
		return true, ""
	}
	return false, "tailnet door off: no auth key and no saved state; set tailnet.auth_key_file (a reusable, pre-authorized key) or run `gatehouse login` once"
}

// nodeDir is a node's own directory under the state directory, so no two
// nodes ever share (and corrupt) state.
func nodeDir(cfg *routes.TailnetConfig, name string) string {
	return filepath.Join(cfg.StateDir, name)
}

// joined reports whether a node has saved state, i.e. has joined before.
func joined(cfg *routes.TailnetConfig, name string) bool {
	_, err := os.Stat(filepath.Join(nodeDir(cfg, name), "tailscaled.state"))
	return err == nil
}

// quietLogs keeps tailscaled's logs off Tailscale's log service unless the
// admin asked for uploads. It is process-wide, so it runs before any node.
func quietLogs(cfg *routes.TailnetConfig) {
	if !cfg.LogUpload {
		envknob.SetNoLogsNoSupport()
		logtail.Disable()
	}
}

// Start brings up the shared node and the per-route nodes of t.
func Start(cfg *routes.TailnetConfig, t *routes.Table, opts Options) *Nodes {
	quietLogs(cfg)
	ctx, stop := context.WithCancel(context.Background())
	n := &Nodes{cfg: cfg, opts: opts, ctx: ctx, stop: stop, nodes: map[string]*node{}}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.watchControl(30 * time.Second)
	}()
	n.Sync(t)
	n.retireLeftovers(t)
	return n
}

// Wanted lists the nodes a table needs: the shared node first, then one
// per route that asks for its own and opens something on the tailnet. A
// route closed there gets no node: a node would put its name in every
// peer's device list only to answer 404.
func Wanted(cfg *routes.TailnetConfig, t *routes.Table) map[string]bool {
	want := map[string]bool{cfg.Hostname: false}
	for _, r := range t.Routes() {
		if dr := r.Doors[routes.Tailnet]; dr != nil && dr.Node && r.Opens(routes.Tailnet) {
			want[dr.Host] = true
		}
	}
	return want
}

// Sync starts the nodes the table needs and retires the ones it no longer
// names (retire: logged out of the control server, state removed),
// leaving every other node (and its connections) alone.
func (n *Nodes) Sync(t *routes.Table) {
	want := Wanted(n.cfg, t)
	n.mu.Lock()
	defer n.mu.Unlock()
	for name, nd := range n.nodes {
		if _, ok := want[name]; !ok {
			n.opts.Log.Info("tailnet node leaving the tailnet: its route is gone or closed there", "node", name)
			delete(n.nodes, name)
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				nd.retire()
				n.settle.changed()
			}()
		}
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if _, ok := n.nodes[name]; ok {
			continue
		}
		nd := n.newNode(name, want[name])
		n.nodes[name] = nd
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			nd.run()
		}()
	}
}

// Running lists the names of the nodes currently kept.
func (n *Nodes) Running() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for name := range n.nodes {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Close stops every node.
func (n *Nodes) Close() {
	n.stop()
	n.mu.Lock()
	nodes := n.nodes
	n.nodes = map[string]*node{}
	n.mu.Unlock()
	var wg sync.WaitGroup
	for _, nd := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); nd.close() }()
	}
	wg.Wait()
	n.wg.Wait()
}

type node struct {
	parent   *Nodes
	name     string
	perRoute bool
	log      *slog.Logger
	ctx      context.Context
	cancel   context.CancelFunc

	mu      sync.Mutex
	srv     *tsnet.Server
	servers []*http.Server
	closed  bool
	done    chan struct{}
	certs   *certCache
	status  NodeStatus // for Status
}

func (n *Nodes) newNode(name string, perRoute bool) *node {
	ctx, cancel := context.WithCancel(n.ctx)
	return &node{
		parent: n, name: name, perRoute: perRoute, ctx: ctx, cancel: cancel,
		log: n.opts.Log.With("node", name), done: make(chan struct{}),
	}
}

func (nd *node) dir() string {
	if nd.parent.opts.Dir != nil {
		return nd.parent.opts.Dir(nd.name)
	}
	return nodeDir(nd.parent.cfg, nd.name)
}

func (nd *node) newServer() (*tsnet.Server, error) {
	cfg := nd.parent.cfg
	dir := nd.dir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	port, perr := udpPort(dir)
	if perr != nil {
		// Any port works; only a restart's first seconds are slower.
		nd.log.Warn("tailnet node: no kept UDP port, using any free one", "err", perr)
	}
	s := &tsnet.Server{
		Dir:           dir,
		Port:          port,
		Hostname:      nd.name,
		ControlURL:    cfg.ControlURL,
		Ephemeral:     cfg.Ephemeral,
		AdvertiseTags: cfg.Tags,
		Logf:          nd.tsLogf(slog.LevelDebug),
		UserLogf:      nd.tsLogf(slog.LevelInfo),
	}
	if cfg.Verbose {
		s.Logf = nd.tsLogf(slog.LevelInfo)
	}
	var err error
	if cfg.AuthKeyFile != "" {
		s.AuthKey, err = readSecret(cfg.AuthKeyFile)
	}
	if cfg.ClientSecretFile != "" {
		s.ClientSecret, err = readSecret(cfg.ClientSecretFile)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (nd *node) tsLogf(level slog.Level) func(string, ...any) {
	return func(format string, args ...any) {
		nd.log.Log(context.Background(), level, "tsnet: "+fmt.Sprintf(format, args...))
	}
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading secret file: %w", err)
	}
	s := string(b)
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return s, nil
}

// run starts the node, retrying with backoff: a control server that cannot
// be reached, or a node that fails to start, never holds up the other
// doors or nodes.
func (nd *node) run() {
	defer close(nd.done)
	backoff := time.Second
	for {
		err := nd.runOnce()
		nd.mu.Lock()
		closed := nd.closed
		nd.mu.Unlock()
		if nd.ctx.Err() != nil || closed {
			return
		}
		nd.log.Warn("tailnet node failed; retrying", "err", err, "in", backoff)
		nd.setStatus(func(st *NodeStatus) { *st = NodeStatus{State: "retrying", LastError: err.Error()} })
		select {
		case <-nd.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Minute)
	}
}

func (nd *node) runOnce() error {
	s, err := nd.newServer()
	if err != nil {
		return err
	}
	if err := s.Start(); err != nil {
		s.Close()
		return fmt.Errorf("starting: %w", err)
	}
	nd.mu.Lock()
	if nd.closed {
		nd.mu.Unlock()
		s.Close()
		return nil
	}
	nd.srv = s
	nd.mu.Unlock()
	if hook := nd.parent.opts.Started; hook != nil {
		hook(nd.name, s)
	}
	lc, err := s.LocalClient()
	if err != nil {
		return nd.fail(s, fmt.Errorf("local client: %w", err))
	}
	nd.log.Debug("tailnet node connecting", "control", nd.parent.cfg.ControlURL)
	status, err := s.Up(nd.ctx)
	if err != nil {
		return nd.fail(s, err)
	}
	domains := s.CertDomains()
	handler := nd.parent.opts.Handlers.TailnetHandler(nd.name, nd.perRoute)
	serveErr := make(chan error, 2)
	if len(domains) == 0 {
		nd.parent.plainHTTP.Do(func() { nd.parent.opts.Log.Warn(plainHTTPNotice(nd.parent.cfg.ControlURL)) })
		if err := nd.serve(s, ":80", handler, lc, nil, serveErr); err != nil {
			return nd.fail(s, err)
		}
	} else {
		certs := newCertCache(lc, domains[0], filepath.Join(nd.dir(), "certs"), nd.log)
		nd.mu.Lock()
		nd.certs = certs
		nd.mu.Unlock()
		nd.certs.warm(nd.ctx)
		if err := nd.serve(s, ":443", handler, lc, nd.certs, serveErr); err != nil {
			return nd.fail(s, err)
		}
		redirect := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://"+domains[0]+r.URL.RequestURI(), http.StatusPermanentRedirect)
		})
		if err := nd.serve(s, ":80", redirect, nil, nil, serveErr); err != nil {
			return nd.fail(s, err)
		}
		go nd.certs.renewLoop(nd.ctx)
	}
	addr := ""
	if len(status.TailscaleIPs) > 0 {
		addr = status.TailscaleIPs[0].String()
	}
	name := nd.name
	if len(domains) > 0 {
		name = domains[0]
	}
	nd.log.Info("tailnet node up", "name", name, "ip", addr, "https", len(domains) > 0)
	nd.parent.settle.changed()
	nd.setStatus(func(st *NodeStatus) {
		*st = NodeStatus{State: "up", Addresses: status.TailscaleIPs}
		if len(domains) > 0 {
			st.DNSName = domains[0]
		}
	})
	select {
	case <-nd.ctx.Done():
		return nil
	case err := <-serveErr:
		return nd.fail(s, err)
	}
}

func (nd *node) fail(s *tsnet.Server, err error) error {
	nd.mu.Lock()
	servers := nd.servers
	nd.servers = nil
	if nd.srv == s {
		nd.srv = nil
	}
	nd.mu.Unlock()
	for _, hs := range servers {
		hs.Close()
	}
	s.Close()
	return err
}

// serve listens on the node and serves handler; connections carry their
// own peer lookup (auth.PeerLookupFrom) when lc is set.
func (nd *node) serve(s *tsnet.Server, addr string, h http.Handler, lc *local.Client, certs *certCache, errc chan<- error) error {
	ln, err := s.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	sc := nd.parent.opts.Server
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: sc.ReadHeaderTimeout,
		IdleTimeout:       sc.IdleTimeout,
		MaxHeaderBytes:    sc.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(nd.log.Handler(), slog.LevelDebug),
	}
	if lc != nil {
		hs.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			return auth.WithPeerLookup(ctx, newConnPeer(lc, c.RemoteAddr().String()))
		}
	}
	if certs != nil {
		ln = certs.tlsListener(ln)
	}
	nd.mu.Lock()
	nd.servers = append(nd.servers, hs)
	nd.mu.Unlock()
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serving %s: %w", addr, err)
		}
	}()
	return nil
}

// close drains the node's servers and shuts the node down; its state
// stays, so the node comes back as itself.
func (nd *node) close() {
	nd.drain()
	nd.cancel()
	<-nd.done
	nd.mu.Lock()
	s := nd.srv
	nd.srv = nil
	nd.mu.Unlock()
	if s != nil {
		s.Close()
	}
}

// drain stops the node's HTTP servers, letting running requests finish
// within the shutdown timeout, and marks the node closed.
func (nd *node) drain() {
	nd.mu.Lock()
	nd.closed = true
	servers := nd.servers
	nd.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), nd.parent.opts.Server.ShutdownTimeout)
	defer cancel()
	for _, hs := range servers {
		if err := hs.Shutdown(ctx); err != nil {
			hs.Close()
		}
	}
}
