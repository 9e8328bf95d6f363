package main

// The NixOS module (nixos/) writes gatehouse's command lines and renders
// routes.hcl from Nix. These tests evaluate that Nix code and hand the
// result to the real binary, so a flag or a table the module produces and
// the binary rejects fails here rather than on somebody's server:
//
//   - nixos/tests/flags.nix (plain builtins, needs only nix-instantiate):
//     every ExecStart/ExecReload the module can produce is split the way
//     systemd splits it, then run: the binary must parse the flags, serve,
//     say READY=1 on $NOTIFY_SOCKET and stop cleanly on SIGTERM;
//   - the rendered reference table must pass `gatehouse check` and encode
//     the same matrix as the shipped routes.hcl;
//   - with NIXPKGS_LIB set, the same for the fully evaluated module.
//
// Without nix-instantiate (apt-get install nix-bin) they are skipped; .ci/run
// installs it.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatehouse/routes"
)

const nixosHelperEnv = "GATEHOUSE_NIXOS_HELPER"

// TestNixOSHelperProcess is not a test: it is the gatehouse binary that the
// tests below start with the module's arguments (the test binary re-run).
func TestNixOSHelperProcess(t *testing.T) {
	if os.Getenv(nixosHelperEnv) != "1" {
		return
	}
	i := slices.Index(os.Args, "--")
	if i < 0 {
		fmt.Fprintln(os.Stderr, "helper: no -- in", os.Args)
		os.Exit(2)
	}
	os.Exit(cli(os.Args[i+1:], os.Stdout, os.Stderr))
}

// nixEval runs nix-instantiate --eval --strict --json and decodes the result.
func nixEval(t *testing.T, out any, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("nix-instantiate")
	if err != nil {
		t.Skip("nix-instantiate is not installed (Debian: apt-get install nix-bin; .ci/run installs it)")
	}
	cmd := exec.Command(bin, append([]string{"--eval", "--strict", "--json", "--readonly-mode"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix-instantiate %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("nix-instantiate %s: %v\n%s", strings.Join(args, " "), err, b)
	}
}

// splitExec splits an ExecStart= line as systemd does for the quoting the
// module uses (nixos/lib.nix systemdArg): arguments are bare words or
// double-quoted strings with C/JSON escapes, and "%%" and "$$" stand for a
// literal % and $.
func splitExec(line string) ([]string, error) {
	var args []string
	rest := line
	for {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			return args, nil
		}
		var word string
		if rest[0] == '"' {
			dec := json.NewDecoder(strings.NewReader(rest))
			if err := dec.Decode(&word); err != nil {
				return nil, fmt.Errorf("%q: %w", rest, err)
			}
			rest = rest[dec.InputOffset():]
			if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
				return nil, fmt.Errorf("%q: a quoted argument runs into %q", line, rest)
			}
		} else {
			end := strings.IndexAny(rest, " \t")
			if end < 0 {
				end = len(rest)
			}
			word, rest = rest[:end], rest[end:]
			if strings.ContainsAny(word, `"'\`) {
				return nil, fmt.Errorf("%q: unexpected quote or escape in %q", line, word)
			}
		}
		for _, sp := range []string{"%", "$"} {
			if strings.Contains(strings.ReplaceAll(word, sp+sp, ""), sp) {
				return nil, fmt.Errorf("%q: a lone %s in %q would be expanded by systemd", line, sp, word)
			}
			word = strings.ReplaceAll(word, sp+sp, sp)
		}
		args = append(args, word)
	}
}

func TestSplitExec(t *testing.T) {
	for _, c := range []struct {
		line string
		want []string
	}{
		{`"/bin/gatehouse" "run" "-config" "/a b/%%n $$HOME \"q\".hcl"`, []string{"/bin/gatehouse", "run", "-config", `/a b/%n $HOME "q".hcl`}},
		{`/bin/kill -HUP $$MAINPID`, []string{"/bin/kill", "-HUP", "$MAINPID"}},
		{`"a\u00e9"  b`, []string{"aé", "b"}},
	} {
		got, err := splitExec(c.line)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("splitExec(%q) = %q, %v; want %q", c.line, got, err, c.want)
		}
	}
	for _, bad := range []string{`"unterminated`, `"a"b`, `a"b`, `"%n"`, `"$HOME"`} {
		if got, err := splitExec(bad); err == nil {
			t.Errorf("splitExec(%q) = %q, want an error", bad, got)
		}
	}
}

// notifications listens where $NOTIFY_SOCKET will point and delivers every
// datagram.
func notifications(t *testing.T) (string, <-chan string) {
	t.Helper()
	// Short: a unix socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "gh-notify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "n.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return sock, ch
}

// await waits for a notification starting with want, skipping watchdog
// pings unless those are what it waits for (and late reloads when it waits
// for STOPPING=1). It fails at once if the process exits first.
func (p *gatehouseProcess) await(t *testing.T, want string) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case msg := <-p.notify:
			if strings.HasPrefix(msg, want) {
				return msg
			}
			if msg == "WATCHDOG=1\n" {
				continue
			}
			// A file watcher may see one edit twice; any extra reload
			// must still be a well-formed pair.
			if want == "STOPPING=1" && (strings.HasPrefix(msg, "RELOADING=1\n") || msg == "READY=1\n") {
				continue
			}
			t.Fatalf("got notification %q while waiting for %q\n%s", msg, want, p.stderr)
		case <-p.exited:
			t.Fatalf("gatehouse exited (%v) before sending %q; its log:\n%s", p.waitErr, want, p.stderr)
		case <-deadline:
			t.Fatalf("no %q from gatehouse within 20s; its log:\n%s", want, p.stderr)
		}
	}
}

// syncBuffer collects a child's output for error messages.
type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// doorOnlyTable is a route table that opens the Cloudflare door on port and
// nothing that dials out (no tailnet block).
func doorOnlyTable(port int) string {
	return fmt.Sprintf(`domain = "example.com"
cloudflare {
  listen = "127.0.0.1:%d"
}
route "app" {
  backend = "http://127.0.0.1:9"
  cloudflare {
    host   = "app"
    access = "app"
  }
}
`, port)
}

type gatehouseProcess struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	notify <-chan string
	door   string
	// exited is closed when the process has ended, with waitErr set.
	exited  chan struct{}
	waitErr error
}

// startGatehouse runs the binary with args (argv[1:] of an ExecStart) the
// way systemd would for Type=notify, and waits for READY=1.
func startGatehouse(t *testing.T, args []string, port int, watchdog time.Duration) *gatehouseProcess {
	t.Helper()
	sock, ch := notifications(t)
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestNixOSHelperProcess$", "--"}, args...)...)
	env := []string{nixosHelperEnv + "=1", "NOTIFY_SOCKET=" + sock}
	if watchdog > 0 {
		env = append(env, "WATCHDOG_USEC="+strconv.FormatInt(watchdog.Microseconds(), 10))
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "NOTIFY_SOCKET" && k != "WATCHDOG_USEC" && k != "WATCHDOG_PID" && k != nixosHelperEnv {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	p := &gatehouseProcess{
		cmd: cmd, stderr: newSyncBuffer(), notify: ch, door: fmt.Sprintf("127.0.0.1:%d", port),
		exited: make(chan struct{}),
	}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	p.await(t, "READY=1")
	return p
}

// get asks the Cloudflare door for an unknown host: the same 404 as always.
func (p *gatehouseProcess) get(t *testing.T) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+p.door+"/", nil)
	req.Host = "nope.example.com"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("door: %v\n%s", err, p.stderr)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("door answered %d for an unknown host, want 404", resp.StatusCode)
	}
}

// stop sends SIGTERM and expects STOPPING=1 and a clean exit.
func (p *gatehouseProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.await(t, "STOPPING=1")
	select {
	case <-p.exited:
		if p.waitErr != nil {
			t.Fatalf("gatehouse exited with %v after SIGTERM\n%s", p.waitErr, p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("gatehouse did not exit after SIGTERM\n%s", p.stderr)
	}
}

type nixCommands struct {
	ExecStart  string   `json:"execStart"`
	ExecReload []string `json:"execReload"`
}

// checkCommands runs one module-generated ExecStart/ExecReload pair against
// the binary. configFile is the -config the Nix side was given; runConfig,
// if set, replaces it for `run` (a table that dials nothing).
func checkCommands(t *testing.T, c nixCommands, exe, configFile, runConfig string, port int) {
	t.Helper()
	run, err := splitExec(c.ExecStart)
	if err != nil {
		t.Fatal(err)
	}
	if len(run) < 2 || run[0] != exe || run[1] != "run" {
		t.Fatalf("ExecStart %q does not start with %q run", c.ExecStart, exe)
	}
	if len(c.ExecReload) != 2 {
		t.Fatalf("ExecReload %q: want check, then kill -HUP", c.ExecReload)
	}
	check, err := splitExec(c.ExecReload[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(check) < 2 || check[0] != exe || check[1] != "check" {
		t.Fatalf("ExecReload %q does not start with %q check", c.ExecReload[0], exe)
	}
	kill, err := splitExec(strings.ReplaceAll(c.ExecReload[1], "$MAINPID", "$$MAINPID"))
	if err != nil || len(kill) != 3 || !strings.HasSuffix(kill[0], "/bin/kill") || kill[1] != "-HUP" || kill[2] != "$MAINPID" {
		t.Fatalf("ExecReload's second command %q is not kill -HUP $MAINPID", c.ExecReload[1])
	}
	// Both read the same file, or a reload would check another table than
	// the one it loads.
	if got, want := flagValue(check[1:], "config"), flagValue(run[1:], "config"); got != want || got != configFile {
		t.Fatalf("run reads %q and check reads %q, want both %q", want, got, configFile)
	}

	var out, errb bytes.Buffer
	if code := cli(check[1:], &out, &errb); code != 0 {
		t.Fatalf("ExecReload's %q: exit %d\n%s", check, code, errb.String())
	}

	args := slices.Clone(run[1:])
	if runConfig != "" {
		for i := range args {
			if args[i] == configFile {
				args[i] = runConfig
			}
		}
	}
	p := startGatehouse(t, args, port, 0)
	p.get(t)
	p.stop(t)
}

// flagValue finds -name VALUE or -name=VALUE.
func flagValue(args []string, name string) string {
	for i, a := range args {
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// TestNixOSModuleFlags runs every command line nixos/lib.nix produces (each
// log format and level, with and without the access log, extraArgs) with
// the real flag parser, the real serve loop and a real notify socket. The
// -config path has a space, % and $ in it: systemd's quoting must survive.
func TestNixOSModuleFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir", "%n $HOME")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	configFile := filepath.Join(dir, "routes.hcl")
	port := freePort(t)
	writeFile(t, configFile, doorOnlyTable(port))
	const exe = "/nix/store/00000000000000000000000000000000-gatehouse/bin/gatehouse"

	var got struct {
		Commands map[string]nixCommands `json:"commands"`
	}
	nixEval(t, &got, "nixos/tests/flags.nix", "--argstr", "exe", exe, "--argstr", "configFile", configFile)
	if len(got.Commands) < 10 {
		t.Fatalf("only %d command lines from nixos/tests/flags.nix", len(got.Commands))
	}
	names := make([]string, 0, len(got.Commands))
	for n := range got.Commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			checkCommands(t, got.Commands[n], exe, configFile, "", port)
		})
	}
}

// TestNixOSUnitLifecycle plays systemd for the module's ExecStart: the
// watchdog is fed at half of WatchdogSec, SIGHUP (ExecReload) and a change
// of the file are each RELOADING=1 (with MONOTONIC_USEC) then READY=1, and
// SIGTERM is STOPPING=1.
func TestNixOSUnitLifecycle(t *testing.T) {
	configFile := filepath.Join(t.TempDir(), "routes.hcl")
	port := freePort(t)
	writeFile(t, configFile, doorOnlyTable(port))
	var got struct {
		Commands map[string]nixCommands `json:"commands"`
	}
	nixEval(t, &got, "nixos/tests/flags.nix", "--argstr", "exe", "/bin/gatehouse", "--argstr", "configFile", configFile)
	run, err := splitExec(got.Commands["defaults"].ExecStart)
	if err != nil {
		t.Fatal(err)
	}

	p := startGatehouse(t, run[1:], port, 600*time.Millisecond)
	p.get(t)
	p.await(t, "WATCHDOG=1")
	p.await(t, "WATCHDOG=1")

	reloaded := func(why string) {
		t.Helper()
		msg := p.await(t, "RELOADING=1\n")
		if !strings.Contains(msg, "\nMONOTONIC_USEC=") {
			t.Errorf("%s: reload notification %q lacks MONOTONIC_USEC", why, msg)
		}
		p.await(t, "READY=1")
		p.get(t)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reloaded("SIGHUP")

	// A rejected table is a reload too: the manager must hear READY=1
	// again, while the old table keeps serving.
	writeFile(t, configFile, "domain = \n")
	reloaded("bad file")
	if !strings.Contains(p.stderr.String(), "reload rejected") {
		t.Errorf("a bad file was not rejected:\n%s", p.stderr)
	}
	writeFile(t, configFile, doorOnlyTable(port))
	reloaded("good file")

	p.stop(t)
}

// renderedMatrix loads a table and prints its matrix with routes and path
// rules in name order (Nix attrsets are sorted; routes.hcl is not).
func renderedMatrix(t *testing.T, file string) string {
	t.Helper()
	cfg, _, diags := routes.Load(file)
	if cfg == nil {
		t.Fatalf("%s: %v", file, diags)
	}
	sort.Slice(cfg.Routes, func(i, j int) bool { return cfg.Routes[i].Name < cfg.Routes[j].Name })
	for _, r := range cfg.Routes { // the longest prefix wins: order does not matter
		sort.Slice(r.Paths, func(i, j int) bool { return r.Paths[i].Label < r.Paths[j].Label })
	}
	var b bytes.Buffer
	if err := routes.WriteMatrix(&b, cfg, routes.MatrixOptions{Verbose: true}); err != nil {
		t.Fatal(err)
	}
	for _, r := range cfg.Routes {
		fmt.Fprintf(&b, "%s max_body=%d\n", r.Name, r.MaxBody)
	}
	return b.String()
}

// checkRenderedTable writes a table rendered by the module and runs
// `gatehouse check` on it, then compares its matrix with routes.hcl's.
func checkRenderedTable(t *testing.T, text string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "routes.hcl")
	writeFile(t, file, text)
	var out, errb bytes.Buffer
	if code := cli([]string{"check", "-config", file}, &out, &errb); code != 0 {
		t.Fatalf("gatehouse check on the rendered table: exit %d\n%s\n--- table:\n%s", code, errb.String(), text)
	}
	if !strings.Contains(out.String(), "ok — 15 routes") {
		t.Errorf("check summary: %q", out.String())
	}
	if got, want := renderedMatrix(t, file), renderedMatrix(t, "routes.hcl"); got != want {
		t.Errorf("nixos/examples/routes.nix no longer encodes routes.hcl's matrix; update it.\n--- rendered:\n%s--- routes.hcl:\n%s", got, want)
	}
}

// TestNixOSRenderedRoutesPassCheck renders nixos/examples/routes.nix with
// the module's HCL writer.
func TestNixOSRenderedRoutesPassCheck(t *testing.T) {
	var got struct {
		Routes string `json:"routes"`
	}
	nixEval(t, &got, "nixos/tests/flags.nix", "--argstr", "exe", "/bin/gatehouse", "--argstr", "configFile", "/dev/null")
	checkRenderedTable(t, got.Routes)
}

// readmeNixBlocks are the ```nix blocks of the README's deployment walkthrough.
func readmeNixBlocks(readme string) []string {
	_, section, ok := strings.Cut(readme, "\n## Deploy the reference homelab on NixOS\n")
	if !ok {
		return nil
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks []string
	for {
		_, rest, ok := strings.Cut(section, "\n```nix\n")
		if !ok {
			return blocks
		}
		block, after, _ := strings.Cut(rest, "\n```\n")
		blocks = append(blocks, block)
		section = after
	}
}

// readmeHost is the walkthrough's host configuration.
func readmeHost(readme string) (string, bool) {
	for _, b := range readmeNixBlocks(readme) {
		if strings.Contains(b, "imports = [ inputs.gatehouse.nixosModules.default ]") {
			return b, true
		}
	}
	return "", false
}

// The walkthrough's flake inputs parse as a flake's, and gatehouse follows
// the system's nixpkgs, which is one with Go 1.26.
func TestNixOSReadmeFlakeInputs(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var inputs string
	for _, b := range readmeNixBlocks(string(readme)) {
		if strings.HasPrefix(b, "inputs = {") {
			inputs = b
		}
	}
	for _, want := range []string{`gatehouse.inputs.nixpkgs.follows = "nixpkgs";`, `nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";`} {
		if !strings.Contains(inputs, want) {
			t.Errorf("the README's flake inputs lack %q:\n%s", want, inputs)
		}
	}
	file := filepath.Join(t.TempDir(), "flake.nix")
	writeFile(t, file, "{\n"+inputs+"\noutputs = _: { };\n}\n")
	bin, err := exec.LookPath("nix-instantiate")
	if err != nil {
		t.Skip("nix-instantiate is not installed (Debian: apt-get install nix-bin; .ci/run installs it)")
	}
	var got struct {
		Follows string `json:"follows"`
	}
	out, err := exec.Command(bin, "--eval", "--strict", "--json", "--readonly-mode", "-E",
		fmt.Sprintf("{ follows = (import %s).inputs.gatehouse.inputs.nixpkgs.follows; }", file)).CombinedOutput()
	if err != nil || json.Unmarshal(out, &got) != nil || got.Follows != "nixpkgs" {
		t.Fatalf("the README's flake inputs do not evaluate: %v\n%s", err, out)
	}
}

// TestNixOSReadmeExample evaluates the host configuration in the README's
// NixOS section as written, and checks the table it renders.
func TestNixOSReadmeExample(t *testing.T) {
	lib := os.Getenv("NIXPKGS_LIB")
	if lib == "" {
		t.Skip("NIXPKGS_LIB is not set: the README's NixOS example is not evaluated")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	block, ok := readmeHost(string(readme))
	if !ok {
		t.Fatal("README.md's deployment walkthrough has no ```nix block importing inputs.gatehouse.nixosModules.default")
	}
	file := filepath.Join(t.TempDir(), "example.nix")
	writeFile(t, file, block+"\n")
	var got struct {
		FailedAssertions []string          `json:"failedAssertions"`
		Warnings         []string          `json:"warnings"`
		Routes           string            `json:"routes"`
		Ingress          map[string]string `json:"ingress"`
		LoadCredential   []string          `json:"loadCredential"`
	}
	nixEval(t, &got, "nixos/tests/eval.nix", "--argstr", "nixpkgsLib", lib, "--argstr", "readme", file, "-A", "readmeExample")
	if len(got.FailedAssertions)+len(got.Warnings) > 0 {
		t.Errorf("the README's example fails assertions %q, warns %q", got.FailedAssertions, got.Warnings)
	}
	for _, h := range []string{"photos.example.com", "passwords.example.com"} {
		if got.Ingress[h] != "http://127.0.0.1:8750" {
			t.Errorf("cloudflared ingress for %s: %q", h, got.Ingress[h])
		}
	}
	if len(got.LoadCredential) != 2 {
		t.Errorf("LoadCredential %q, want the auth key and the OIDC secret", got.LoadCredential)
	}
	table := filepath.Join(t.TempDir(), "routes.hcl")
	writeFile(t, table, got.Routes)
	var out, errb bytes.Buffer
	if code := cli([]string{"check", "-config", table}, &out, &errb); code != 0 {
		t.Fatalf("gatehouse check on the README example's table: exit %d\n%s\n--- table:\n%s", code, errb.String(), got.Routes)
	}
}

// TestNixOSEvaluatedModule does the same with the whole module evaluated by
// lib.evalModules (nixos/tests/eval.nix): its ExecStart and ExecReload for
// the full reference configuration, and the table it renders, with the
// credential paths and the door address it adds.
func TestNixOSEvaluatedModule(t *testing.T) {
	lib := os.Getenv("NIXPKGS_LIB")
	if lib == "" {
		t.Skip("NIXPKGS_LIB is not set: the module itself is not evaluated (it needs a checkout of nixpkgs.lib); the command lines are still checked from nixos/lib.nix")
	}
	var got struct {
		ExecStart  string   `json:"execStart"`
		ExecReload []string `json:"execReload"`
		Routes     string   `json:"routes"`
		Exe        string   `json:"exe"`
	}
	nixEval(t, &got, "nixos/tests/eval.nix", "--argstr", "nixpkgsLib", lib, "-A", "generated")
	checkRenderedTable(t, got.Routes)

	// The unit reads the table at /etc/gatehouse/routes.hcl; here the
	// rendered file stands in for it (check) and a table that dials nothing
	// for run (the rendered one would join a tailnet).
	const etc = "/etc/gatehouse/routes.hcl"
	rendered := filepath.Join(t.TempDir(), "routes.hcl")
	writeFile(t, rendered, got.Routes)
	port := freePort(t)
	door := filepath.Join(t.TempDir(), "door.hcl")
	writeFile(t, door, doorOnlyTable(port))
	c := nixCommands{
		ExecStart:  strings.ReplaceAll(got.ExecStart, etc, rendered),
		ExecReload: []string{strings.ReplaceAll(got.ExecReload[0], etc, rendered), got.ExecReload[1]},
	}
	if c.ExecStart == got.ExecStart {
		t.Fatalf("ExecStart %q does not read %s", got.ExecStart, etc)
	}
	checkCommands(t, c, got.Exe, rendered, door, port)
}

// TestNixOSHostCommand runs the `gatehouse` command the module puts on the
// host's PATH (nixos/lib.nix cliWrapper) with sh, the real binary behind
// it and a stand-in systemd-run that records its arguments and runs the
// command after "--" as systemd would, with --setenv applied: `routes`
// reads the service's table without -config, an explicit -config still
// wins, and `tokens` runs through systemd-run as the service's user on its
// state directory — as root only.
func TestNixOSHostCommand(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	configFile := filepath.Join(dir, "routes.hcl")
	writeFile(t, configFile, doorOnlyTable(freePort(t))+fmt.Sprintf(`
oidc {
  issuer             = "https://auth.example.com/realms/home"
  client_id          = "gatehouse"
  client_secret_file = "/run/credentials/gatehouse.service/oidc-client-secret"
  cookie_key_file    = %q
}
`, filepath.Join(state, "oidc", "cookie.keys")))
	other := filepath.Join(dir, "other.hcl")
	writeFile(t, other, strings.Replace(doorOnlyTable(freePort(t)), `host   = "app"`, `host   = "other"`, 1))

	// The binary: this test binary as gatehouse (TestNixOSHelperProcess).
	exe := filepath.Join(dir, "gatehouse")
	writeFile(t, exe, fmt.Sprintf("#!/bin/sh\n%s=1 exec %q -test.run='^TestNixOSHelperProcess$' -- \"$@\"\n", nixosHelperEnv, os.Args[0]))
	// systemd-run: record the arguments, apply --setenv, run what follows --.
	runLog := filepath.Join(dir, "systemd-run.args")
	systemdRun := filepath.Join(dir, "systemd-run")
	writeFile(t, systemdRun, `#!/bin/sh
printf '%s\n' "$@" > `+runLog+`
while [ "$1" != "--" ]; do
	case "$1" in --setenv=*) export "${1#--setenv=}" ;; esac
	shift
done
shift
exec "$@"
`)
	uid := filepath.Join(dir, "id") // id -u: root
	writeFile(t, uid, "#!/bin/sh\necho 0\n")
	for _, f := range []string{exe, systemdRun, uid} {
		if err := os.Chmod(f, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	var got struct {
		CLI string `json:"cli"`
	}
	nixEval(t, &got, "nixos/tests/flags.nix", "--argstr", "exe", exe, "--argstr", "configFile", configFile,
		"--argstr", "systemdRun", systemdRun, "--argstr", "id", uid, "--argstr", "stateDir", state)
	wrapper := filepath.Join(dir, "gatehouse-on-path")
	writeFile(t, wrapper, got.CLI)

	run := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(sh, append([]string{wrapper}, args...)...)
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, configEnv+"=") && !strings.HasPrefix(kv, nixosHelperEnv+"=") {
				env = append(env, kv)
			}
		}
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}

	t.Run("routes reads the service's table", func(t *testing.T) {
		out, errs, code := run("routes")
		if code != 0 || !strings.Contains(out, "app.example.com") {
			t.Fatalf("gatehouse routes: exit %d\n%s%s", code, out, errs)
		}
		if _, err := os.Stat(runLog); err == nil {
			t.Errorf("routes went through systemd-run; it needs no state")
		}
	})
	t.Run("an explicit -config wins", func(t *testing.T) {
		out, errs, code := run("routes", "-config", other)
		if code != 0 || !strings.Contains(out, "other.example.com") || strings.Contains(out, "app.example.com") {
			t.Fatalf("gatehouse routes -config other.hcl: exit %d\n%s%s", code, out, errs)
		}
	})
	t.Run("tokens runs as the service's user", func(t *testing.T) {
		out, errs, code := run("tokens", "list")
		if code != 0 || !strings.Contains(out, "DEVICE") {
			t.Fatalf("gatehouse tokens list: exit %d\n%s%s", code, out, errs)
		}
		b, err := os.ReadFile(runLog)
		if err != nil {
			t.Fatalf("tokens did not go through systemd-run: %v", err)
		}
		args := strings.Split(strings.TrimSpace(string(b)), "\n")
		for _, want := range []string{
			"--wait", "--pipe", "--property=DynamicUser=yes", "--property=User=gatehouse",
			"--property=StateDirectory=state", "--working-directory=" + state,
			"--setenv=" + configEnv + "=" + configFile, "--", exe, "tokens", "list",
		} {
			if !slices.Contains(args, want) {
				t.Errorf("systemd-run lacks %q: %q", want, args)
			}
		}
	})
	t.Run("tokens as another user is refused", func(t *testing.T) {
		writeFile(t, uid, "#!/bin/sh\necho 1000\n")
		os.Chmod(uid, 0o755)
		_, errs, code := run("tokens", "list")
		if code != 1 || !strings.Contains(errs, "run it as root") {
			t.Fatalf("tokens as uid 1000: exit %d, %q", code, errs)
		}
	})
}
