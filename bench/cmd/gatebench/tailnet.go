package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tailscale.com/derp/derpserver"
	"tailscale.com/envknob"
	"tailscale.com/logtail"
	"tailscale.com/net/netns"
	"tailscale.com/net/stunserver"
	"tailscale.com/tailcfg"
	"tailscale.com/tsnet"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/key"
	"tailscale.com/types/logger"
)

// The tailnet scenario: what gatehouse's tailnet door costs in memory. A
// whole tailnet runs inside gatebench, on loopback: tailscale.com's test
// control server (testcontrol, as the tests' tailnet/tailnettest uses),
// a DERP relay and a STUN server, and one client node (the peer) that
// proves each gatehouse node up by an answer through it. The tailnet has
// no MagicDNS domain, so no HTTPS certificates: nodes serve plain HTTP on
// :80 (a real tailnet's certificate adds one cached certificate per node).
//
// gatehouse runs twice per mode, pinned like the other proxies: with the
// shared node only (one route on it), then with extra routes that each
// have their own node. RSS is read once every node has answered and the
// process has been left alone for a while.

// tailnetLab is the in-process tailnet.
type tailnetLab struct {
	controlURL string
	control    *testcontrol.Server
	derpHTTP   *httptest.Server
	derp       *derpserver.Server
	stun       *stunserver.STUNServer
	stunCancel context.CancelFunc
	peer       *tsnet.Server
	http       *http.Client
	authKey    string
	stateDir   string // gatehouse's tailnet state, kept across runs and modes: same nodes (see stateFor)
}

// tsEnv keeps every node, gatehouse's and the peer, on loopback and off
// the network: no log upload, no port mapping probes of the router, no
// local interface addresses offered as endpoints (the STUN server on
// 127.0.0.1 gives the one endpoint that is used).
var tsEnv = []string{"TS_NO_LOGS_NO_SUPPORT=true", "TS_DISABLE_PORTMAPPER=true", "TS_DEBUG_OMIT_LOCAL_ADDRS=true"}

func startTailnetLab(dir string) (lab *tailnetLab, err error) {
	for _, kv := range tsEnv {
		k, v, _ := strings.Cut(kv, "=")
		envknob.Setenv(k, v)
	}
	envknob.SetNoLogsNoSupport()
	logtail.Disable()
	// As in the tests: sockets are not bound to the default route's
	// interface, which would take them off loopback.
	netns.SetEnabled(false)

	lab = &tailnetLab{stateDir: filepath.Join(dir, "tailnet-state")}
	defer func() {
		if err != nil {
			lab.Close()
		}
	}()
	lab.derp = derpserver.New(key.NewNode(), logger.Discard)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return lab, err
	}
	lab.derpHTTP = httptest.NewUnstartedServer(derpserver.Handler(lab.derp))
	lab.derpHTTP.Listener.Close()
	lab.derpHTTP.Listener = ln
	lab.derpHTTP.Config.ErrorLog = log.New(io.Discard, "", 0)
	lab.derpHTTP.Config.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	lab.derpHTTP.StartTLS()

	var ctx context.Context
	ctx, lab.stunCancel = context.WithCancel(context.Background())
	lab.stun = stunserver.New(ctx)
	if err := lab.stun.Listen("127.0.0.1:0"); err != nil {
		return lab, fmt.Errorf("stun: %w", err)
	}
	go lab.stun.Serve()

	derpMap := &tailcfg.DERPMap{Regions: map[int]*tailcfg.DERPRegion{1: {
		RegionID: 1, RegionCode: "bench",
		Nodes: []*tailcfg.DERPNode{{
			Name: "b1", RegionID: 1, HostName: "127.0.0.1", IPv4: "127.0.0.1", IPv6: "none",
			STUNPort: lab.stun.LocalAddr().(*net.UDPAddr).Port, DERPPort: ln.Addr().(*net.TCPAddr).Port,
			InsecureForTests: true, STUNTestIP: "127.0.0.1",
		}},
	}}}
	lab.control = &testcontrol.Server{DERPMap: derpMap, DNSConfig: &tailcfg.DNSConfig{Proxied: true}, Logf: logger.Discard}
	lab.control.HTTPTestServer = httptest.NewUnstartedServer(lab.control)
	lab.control.HTTPTestServer.Config.ErrorLog = log.New(io.Discard, "", 0)
	lab.control.HTTPTestServer.Start()
	lab.controlURL = lab.control.HTTPTestServer.URL

	// testcontrol takes any auth key.
	lab.authKey = filepath.Join(dir, "tailnet-authkey")
	if err := os.WriteFile(lab.authKey, []byte("tskey-bench\n"), 0o600); err != nil {
		return lab, err
	}
	lab.peer = &tsnet.Server{
		Dir: filepath.Join(dir, "tailnet-peer"), Hostname: "bench-peer", ControlURL: lab.controlURL,
		Ephemeral: true, AuthKey: "tskey-bench", Logf: logger.Discard, UserLogf: logger.Discard,
	}
	upCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := lab.peer.Up(upCtx); err != nil {
		return lab, fmt.Errorf("the bench's tailnet peer: %w", err)
	}
	lab.http = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: lab.peer.Dial, DisableKeepAlives: true,
	}}
	return lab, nil
}

func (l *tailnetLab) Close() {
	if l == nil {
		return
	}
	if l.peer != nil {
		l.peer.Close()
	}
	if l.control != nil && l.control.HTTPTestServer != nil {
		l.control.HTTPTestServer.Close()
	}
	if l.derpHTTP != nil {
		l.derpHTTP.CloseClientConnections()
		l.derpHTTP.Close()
	}
	if l.derp != nil {
		l.derp.Close()
	}
	if l.stunCancel != nil {
		l.stunCancel()
	}
}

// addrsOf are the tailnet addresses of the nodes called hostname, as the
// peer sees them (testcontrol says nothing of which are online; a node
// that joined again under a new key leaves its old entry behind).
func (l *tailnetLab) addrsOf(ctx context.Context, hostname string) []string {
	lc, err := l.peer.LocalClient()
	if err != nil {
		return nil
	}
	st, err := lc.Status(ctx)
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range st.Peer {
		if p.HostName == hostname && len(p.TailscaleIPs) > 0 {
			out = append(out, p.TailscaleIPs[0].String())
		}
	}
	return out
}

// answer asks node hostname for path through the tailnet until it
// answers (a new node takes a moment to be reachable) and returns the
// status and body.
func (l *tailnetLab) answer(hostname, path string, deadline time.Time) (int, []byte, error) {
	last := fmt.Errorf("%s never showed up on the tailnet", hostname)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		addrs := l.addrsOf(ctx, hostname)
		cancel()
		for _, addr := range addrs {
			resp, err := l.http.Get("http://" + addr + path)
			if err != nil {
				last = err
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, b, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return 0, nil, fmt.Errorf("%s did not answer through the tailnet: %v", hostname, last)
}

// sharedNode is the hostname of gatehouse's shared node with the given
// route nodes beside it, and stateFor its state directory. Each set of
// nodes keeps a state directory of its own: the rounds switch between
// one node and several, and in one directory every start with one node
// would find the others as leftovers to log out (docs/doors.md, per-route
// nodes), which a gateway restarted on the same routes.hcl never does. So
// the first round measures nodes joining, the later ones nodes restarted
// from their state.
func sharedNode(nodes []string) string {
	if len(nodes) == 0 {
		return "gatehouse"
	}
	return fmt.Sprintf("gatehouse-%d", len(nodes))
}

func (l *tailnetLab) stateFor(nodes []string) string {
	return filepath.Join(l.stateDir, sharedNode(nodes))
}

// tailnetConfig is a routes.hcl with the tailnet door: the shared node
// serving route "app" (node = false), and one route with its own node for
// each of nodes.
func (l *tailnetLab) gatehouseConfig(dir string, listen, metrics, backend int, nodes []string) (string, error) {
	cfg := configHead(listen, metrics) + fmt.Sprintf(`
tailnet {
  hostname      = %q
  state_dir     = %q
  auth_key_file = %q
  control_url   = %q
}

route "app" {
  backend = "http://127.0.0.1:%d"
  cloudflare {
    host   = "app"
    access = "app"
  }
  tailnet {
    access = "members"
    node   = false
  }
}
`, sharedNode(nodes), l.stateFor(nodes), l.authKey, l.controlURL, backend)
	for _, n := range nodes {
		cfg += fmt.Sprintf(`
route %q {
  backend = "http://127.0.0.1:%d"
  tailnet {
    access = "members"
  }
}
`, n, backend)
	}
	path := filepath.Join(dir, fmt.Sprintf("routes-tailnet-%d.hcl", len(nodes)))
	return path, os.WriteFile(path, []byte(cfg), 0o644)
}

// tailnetIdle is one gatehouse process with the tailnet door, idle.
type tailnetIdle struct {
	rss, anon, file float64 // MiB: resident, of it anonymous and file-backed (the binary's code)
	up              time.Duration
}

// startTailnet starts gatehouse with the given per-route nodes and
// waits until every node answers through the tailnet. It returns the
// process, its metrics port and how long the nodes took to answer, from
// the process's start.
func (m *modeRun) startTailnet(lab *tailnetLab, backend int, nodes []string, logName string) (*proc, int, time.Duration, error) {
	dir := filepath.Join(m.o.work, m.spec.name)
	ports, err := freePorts(2)
	if err != nil {
		return nil, 0, 0, err
	}
	cfg, err := lab.gatehouseConfig(dir, ports[0], ports[1], backend, nodes)
	if err != nil {
		return nil, 0, 0, err
	}
	if out, err := runQuiet(m.o.gatehouse, "check", "-config", cfg); err != nil {
		return nil, 0, 0, fmt.Errorf("gatehouse check of the tailnet routes.hcl failed: %s", out)
	}
	env := append(append([]string{}, tsEnv...), m.proxyEnv()...)
	gh, err := startProc(logName, m.spec.proxyCPU, env, filepath.Join(dir, logName+".log"), nil,
		m.o.gatehouse, "run", "-config", cfg, "-access-log=false", "-log-level", "warn")
	if err != nil {
		return nil, 0, 0, err
	}
	t0 := time.Now()
	deadline := t0.Add(90 * time.Second)
	fail := func(err error) (*proc, int, time.Duration, error) {
		gh.stop()
		return nil, 0, 0, err
	}
	// The shared node answers for the dashboard and the routes on it; any
	// answer shows it up. Each route node must forward to the backend.
	if _, _, err := lab.answer(sharedNode(nodes), "/", deadline); err != nil {
		return fail(fmt.Errorf("%w\n%s", err, gh.logTail()))
	}
	for _, n := range nodes {
		code, b, err := lab.answer(n, "/1k", deadline)
		if err != nil {
			return fail(fmt.Errorf("%w\n%s", err, gh.logTail()))
		}
		if code != 200 || len(b) != 1024 || !matchesPattern(b, 0) {
			return fail(fmt.Errorf("route node %s answered GET /1k with %d and %d bytes", n, code, len(b)))
		}
	}
	up := time.Since(t0)
	if gh.exited() {
		return fail(fmt.Errorf("gatehouse exited: %v\n%s", gh.err, gh.logTail()))
	}
	return gh, ports[1], up, nil
}

// tailnetRSS starts gatehouse with the given per-route nodes, waits until
// every node answers through the tailnet, leaves it idle for settle and
// returns its RSS (the median of samples over the following second) and
// how long the nodes took to come up. gatehouse's heap profile is saved
// beside its log (kept with -keep).
func (m *modeRun) tailnetRSS(lab *tailnetLab, backend int, nodes []string, settle time.Duration) (tailnetIdle, error) {
	name := fmt.Sprintf("gatehouse-tailnet-%d", len(nodes))
	gh, metrics, up, err := m.startTailnet(lab, backend, nodes, name)
	if err != nil {
		return tailnetIdle{}, err
	}
	defer gh.stop()
	time.Sleep(settle)
	var rss, anon, file []float64
	for range 5 {
		kb := statusKiB(gh.pid, "VmRSS", "RssAnon", "RssFile")
		rss, anon, file = append(rss, float64(kb[0])/1024), append(anon, float64(kb[1])/1024), append(file, float64(kb[2])/1024)
		time.Sleep(250 * time.Millisecond)
	}
	saveHeapProfile(metrics, filepath.Join(m.o.work, m.spec.name, name+".heap"))
	return tailnetIdle{rss: median(rss), anon: median(anon), file: median(file), up: up}, nil
}

// tailnetRestarts restarts the one-node gatehouse n times, each time the
// moment its node has answered, and returns how long each restarted node
// took to answer its peer: what an admin's open page waits for after a
// `systemctl restart` (tailnet/udpport.go).
func (m *modeRun) tailnetRestarts(lab *tailnetLab, backend, n int) ([]time.Duration, error) {
	gh, _, _, err := m.startTailnet(lab, backend, nil, "gatehouse-tailnet-restart")
	if err != nil {
		return nil, err
	}
	var ups []time.Duration
	for range n {
		gh.stop()
		var up time.Duration
		gh, _, up, err = m.startTailnet(lab, backend, nil, "gatehouse-tailnet-restart")
		if err != nil {
			return ups, err
		}
		ups = append(ups, up)
	}
	gh.stop()
	return ups, nil
}

// saveHeapProfile keeps gatehouse's heap profile from its metrics
// listener, for `go tool pprof` on what the nodes hold.
func saveHeapProfile(metricsPort int, path string) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap", metricsPort))
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if b, err := io.ReadAll(resp.Body); err == nil && resp.StatusCode == 200 {
		os.WriteFile(path, b, 0o644)
	}
}

// tailnetResult is what the scenario measured in one mode.
type tailnetResult struct {
	oneNode   []float64 // RSS, MiB, per round
	perNode   []float64 // (RSS with the extra nodes − oneNode) / extra, per round
	extra     int
	one, more tailnetIdle // the last round's
	down      string
	noTailnet float64 // the main gatehouse's idle RSS, without the tailnet door
	// restarts: seconds from each restart of the one-node gatehouse, made
	// the moment its node had answered, to its next answer.
	restarts    []float64
	restartDown string
}

func (m *modeRun) scenarioTailnet(lab *tailnetLab, backend int) {
	tr := &m.res.tailnet
	tr.extra = 4
	settle := 3 * time.Second
	if m.o.quick {
		tr.extra, settle = 2, time.Second
	}
	if lab == nil {
		tr.down = "the in-process tailnet did not start"
		return
	}
	var nodes []string
	for i := range tr.extra {
		nodes = append(nodes, fmt.Sprintf("node%d", i+1))
	}
	logf("tailnet: idle RSS with the shared node, then with %d more route nodes, %d rounds", tr.extra, m.o.rounds)
	for round := 0; round < m.o.rounds; round++ {
		one, err := m.tailnetRSS(lab, backend, nil, settle)
		if err != nil {
			tr.down = err.Error()
			m.res.note("tailnet: %v", err)
			return
		}
		more, err := m.tailnetRSS(lab, backend, nodes, settle)
		if err != nil {
			tr.down = err.Error()
			m.res.note("tailnet: %v", err)
			return
		}
		tr.oneNode = append(tr.oneNode, one.rss)
		tr.perNode = append(tr.perNode, (more.rss-one.rss)/float64(tr.extra))
		tr.one, tr.more = one, more
		logf("  round %d  one node %5.1f MiB (%.1f anonymous; up in %s)  %d more nodes %5.1f MiB (%.1f anonymous; up in %s): %.1f MiB each", round+1,
			one.rss, one.anon, one.up.Round(100*time.Millisecond), tr.extra, more.rss, more.anon, more.up.Round(100*time.Millisecond), (more.rss-one.rss)/float64(tr.extra))
	}
	restarts := 3 * m.o.rounds
	if m.o.quick {
		restarts = 2
	}
	ups, err := m.tailnetRestarts(lab, backend, restarts)
	for _, up := range ups {
		tr.restarts = append(tr.restarts, up.Seconds())
	}
	if err != nil {
		tr.restartDown = err.Error()
		m.res.note("tailnet restarts: %v", err)
	}
	logf("  %d restarts, each right after an answer: answering again in %s s", len(ups), strings.Join(fmtSeconds(tr.restarts), ", "))
}

func fmtSeconds(s []float64) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%.1f", v)
	}
	return out
}
