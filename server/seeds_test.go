package server

// The reference home server's own services behind the tailnet door, the
// real programs from Debian (.ci/run installs them): Radicale with a real
// CalDAV/CardDAV client (vdirsyncer), and Deluge's web UI with its daemon.
// Each test skips only where one of its programs is missing.

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gatehouse/tailnet/tailnettest"
)

// needPrograms skips the test when one of the programs is not installed.
func needPrograms(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s is not installed (.ci/run installs it): %v", n, err)
		}
	}
}

// program is a seed service running for one test.
type program struct {
	name string
	done chan struct{} // closed when the process has exited
}

// startProgram runs a service in a process group of its own, with its
// output in dir (shown when the test fails), and kills the whole group when
// the test ends.
func startProgram(t testing.TB, dir, name string, args ...string) *program {
	t.Helper()
	out := filepath.Join(dir, name+".out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cmd.Stdout, cmd.Stderr = f, f
	// Pdeathsig: a test binary that dies leaves nothing running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &program{name: name, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(out)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("%s output (end):\n%s", name, b)
		}
	})
	return p
}

// waitUntil retries ready until it reports nil, failing the test if the
// program exits first or the hang guard runs out.
func (p *program) waitUntil(t testing.TB, what string, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // hang guard
	for {
		err := ready()
		if err == nil {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before %s: %v", p.name, what, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s: %v", p.name, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func dialsOK(network, addr string) func() error {
	return func() error {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
}

// runProgram runs a one-shot client to completion and returns its output.
func runProgram(t testing.TB, ctx context.Context, dir, stdin, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute) // hang guard
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// forwardLoopback listens on a loopback port and joins every connection to
// a new one from dial, copying both ways. Programs outside this process
// (vdirsyncer, deluge-web) cannot dial a tsnet node's userspace network or
// a namespace's socket; through this they reach what only the test can.
func forwardLoopback(t testing.TB, dial func(context.Context) (net.Conn, error)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	track := func(c net.Conn) {
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c)
			wg.Go(func() {
				defer c.Close()
				up, err := dial(ctx)
				if err != nil {
					return
				}
				track(up)
				defer up.Close()
				// HTTP and Deluge's RPC never half-close: when one side
				// is done, so is the connection.
				copied := make(chan struct{}, 2)
				go func() { io.Copy(up, c); copied <- struct{}{} }()
				go func() { io.Copy(c, up); copied <- struct{}{} }()
				<-copied
				c.Close()
				up.Close()
				<-copied
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		cancel()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// startSeedTailnet runs a tailnet without HTTPS certificates, so route
// nodes answer plain HTTP on port 80 (as in
// TestTailnetWithoutCertificatesServesHTTP), with two users: alice, an
// admin, and bob, a member. gatehouse serves routesHCL on it.
func startSeedTailnet(t *testing.T, ctx context.Context, routesHCL string) (alice, bob *peer) {
	t.Helper()
	controlURL := startControlWith(t, "").HTTPTestServer.URL
	issuer := newCertIssuer(t)
	alice = startPeer(t, ctx, controlURL, "alice-laptop", nil, issuer.pool())
	bob = startPeer(t, ctx, controlURL, "bob-phone", nil, issuer.pool())
	if alice.login == "" || bob.login == "" || alice.login == bob.login {
		t.Fatalf("testcontrol users: alice %q, bob %q", alice.login, bob.login)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "authkey")
	writeFile(t, keyFile, "tskey-test\n")
	config := filepath.Join(dir, "routes.hcl")
	writeFile(t, config, tailnetConfig(controlURL, filepath.Join(dir, "state"), keyFile, []string{alice.login}, routesHCL))
	startTailnetGateway(t, config, issuer)
	return alice, bob
}

// request sends one request from a tailnet peer once the tailnet has
// settled (see peer.get).
func (p *peer) request(t testing.TB, method, url, body string, hdr ...string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // hang guard
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		// Set directly: a spelling like X_Remote_User must reach the wire
		// as written.
		req.Header[hdr[i]] = []string{hdr[i+1]}
	}
	resp, err := p.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}
}

const (
	seedEventUID   = "gatehouse-seed-dentist"
	seedContactUID = "gatehouse-seed-ada"
	seedForgedUID  = "gatehouse-seed-forged"
)

func seedEvent(uid string) string {
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//gatehouse//seeds test//EN\r\n" +
		"BEGIN:VEVENT\r\nUID:" + uid + "\r\nDTSTAMP:20250101T000000Z\r\n" +
		"DTSTART:20250102T100000Z\r\nDTEND:20250102T110000Z\r\nSUMMARY:Dentist\r\n" +
		"END:VEVENT\r\nEND:VCALENDAR\r\n"
}

// vdirsyncerConfig pairs local calendar and contact folders under dir with
// the server behind serverURL; collections is vdirsyncer's "from a" (local
// collections are made on the server) or "from b" (the other way).
func vdirsyncerConfig(dir, serverURL, collections string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[general]\nstatus_path = %q\n", filepath.Join(dir, "status")+"/")
	for _, kind := range []struct{ name, dav, ext string }{
		{"calendars", "caldav", ".ics"},
		{"contacts", "carddav", ".vcf"},
	} {
		fmt.Fprintf(&b, `
[pair %[1]s]
a = "%[1]s_local"
b = "%[1]s_radicale"
collections = [%[5]q]

[storage %[1]s_local]
type = "filesystem"
path = %[2]q
fileext = %[3]q

[storage %[1]s_radicale]
type = %[4]q
url = %[6]q
`, kind.name, filepath.Join(dir, kind.name)+"/", kind.ext, kind.dav, collections, serverURL)
	}
	return b.String()
}

// syncWithVdirsyncer runs discover (answering yes to creating missing
// collections) and sync for the configuration in dir.
func syncWithVdirsyncer(t testing.TB, ctx context.Context, dir, config string) {
	t.Helper()
	cfg := filepath.Join(dir, "vdirsyncer.conf")
	writeFile(t, cfg, config)
	runProgram(t, ctx, dir, strings.Repeat("y\n", 8), "vdirsyncer", "-c", cfg, "discover")
	runProgram(t, ctx, dir, "", "vdirsyncer", "-c", cfg, "sync")
}

// itemsWithUID lists the files below dir whose content has the UID,
// leaving out Radicale's own caches (.Radicale.cache/).
func itemsWithUID(t testing.TB, dir, uid string) []string {
	t.Helper()
	var found []string
	line := regexp.MustCompile(`(?m)^UID:` + regexp.QuoteMeta(uid) + `\r?$`)
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".Radicale") {
				return filepath.SkipDir
			}
			return nil
		}
		if b, err := os.ReadFile(path); err == nil && line.Match(b) {
			found = append(found, path)
		}
		return nil
	})
	return found
}

// Radicale signs tailnet members in by the X-Remote-User header gatehouse
// sets from WhoIs ([auth] type = http_x_remote_user: Kozea/Radicale
// radicale/auth/http_x_remote_user.py). vdirsyncer, a real CalDAV/CardDAV
// client, syncs an event and a contact through the tailnet door; they land
// in the collections of the peer's tailnet login, and come back in a second
// sync. Another member forging X-Remote-User is still themselves to
// Radicale.
func TestRadicaleThroughTheTailnetDoor(t *testing.T) {
	needPrograms(t, "radicale", "vdirsyncer")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// Radicale's defaults (Kozea/Radicale radicale/config.py) listen on
	// localhost:5232, store in /var/lib/radicale and read
	// /etc/radicale/config; --config replaces the files read
	// (radicale/__main__.py), and everything the test needs is set here.
	dir := t.TempDir()
	storage := filepath.Join(dir, "collections")
	port := freePort(t)
	writeFile(t, filepath.Join(dir, "radicale.conf"), fmt.Sprintf(`[server]
hosts = 127.0.0.1:%d
[auth]
type = http_x_remote_user
[rights]
type = owner_only
[storage]
filesystem_folder = %s
[web]
type = none
[logging]
level = info
`, port, storage))
	radicale := startProgram(t, dir, "radicale", "--config", filepath.Join(dir, "radicale.conf"))
	radicale.waitUntil(t, "listening", dialsOK("tcp", fmt.Sprintf("127.0.0.1:%d", port)))

	alice, bob := startSeedTailnet(t, ctx, tailnetRoute("radicale", fmt.Sprintf("http://127.0.0.1:%d", port), "members",
		`identity_headers = ["X-Remote-User"]`))
	door := tailnettest.AddrOf(t, ctx, alice.s, "radicale") + ":80"
	alice.get(t, "http://"+door+"/") // the tailnet has settled
	// vdirsyncer's bytes cross the tailnet from alice's node.
	viaAlice := forwardLoopback(t, func(ctx context.Context) (net.Conn, error) {
		return alice.s.Dial(ctx, "tcp", door)
	})
	// The server's root, not a user's collection: vdirsyncer finds the
	// user's calendars from current-user-principal, which Radicale answers
	// from the identity it was given. The Host it sends is the forwarder's
	// address: the route's own node picks the route (proxy/door.go,
	// fixedHost), not the Host header.
	serverURL := "http://" + viaAlice + "/"

	local := t.TempDir()
	os.MkdirAll(filepath.Join(local, "calendars", "personal"), 0o700)
	os.MkdirAll(filepath.Join(local, "contacts", "family"), 0o700)
	writeFile(t, filepath.Join(local, "calendars", "personal", "dentist.ics"), seedEvent(seedEventUID))
	writeFile(t, filepath.Join(local, "contacts", "family", "ada.vcf"),
		"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:"+seedContactUID+"\r\nFN:Ada Lovelace\r\nN:Lovelace;Ada;;;\r\nEND:VCARD\r\n")
	syncWithVdirsyncer(t, ctx, local, vdirsyncerConfig(local, serverURL, "from a"))

	// Radicale's multifilesystem storage: collection-root/<user>/<collection>/.
	root := filepath.Join(storage, "collection-root")
	users, _ := os.ReadDir(root)
	var names []string
	for _, u := range users {
		names = append(names, u.Name())
	}
	if !slices.Equal(names, []string{alice.login}) {
		t.Fatalf("Radicale's users: %q, want only alice's tailnet login %q", names, alice.login)
	}
	event := itemsWithUID(t, filepath.Join(root, alice.login, "personal"), seedEventUID)
	contact := itemsWithUID(t, filepath.Join(root, alice.login, "family"), seedContactUID)
	if len(event) != 1 || len(contact) != 1 {
		t.Fatalf("in alice's collections on Radicale: event %q, contact %q", event, contact)
	}

	t.Run("second sync brings them back", func(t *testing.T) {
		again := t.TempDir()
		syncWithVdirsyncer(t, ctx, again, vdirsyncerConfig(again, serverURL, "from b"))
		if got := itemsWithUID(t, filepath.Join(again, "calendars", "personal"), seedEventUID); len(got) != 1 {
			t.Errorf("event after a sync into an empty folder: %q", got)
		}
		if got := itemsWithUID(t, filepath.Join(again, "contacts", "family"), seedContactUID); len(got) != 1 {
			t.Errorf("contact after a sync into an empty folder: %q", got)
		}
	})

	t.Run("forged X-Remote-User", func(t *testing.T) {
		forged := []string{"X-Remote-User", alice.login, "X_Remote_User", alice.login, "Remote-User", alice.login}
		base := "http://" + door
		// Radicale names the user it signed in: bob, whatever he claims.
		a := bob.request(t, "PROPFIND", base+"/",
			`<propfind xmlns="DAV:"><prop><current-user-principal/></prop></propfind>`,
			append([]string{"Depth", "0", "Content-Type", "application/xml"}, forged...)...)
		var principal string
		if m := regexp.MustCompile(`<current-user-principal><href>([^<]*)</href>`).FindStringSubmatch(a.body); m != nil {
			principal, _ = url.PathUnescape(m[1])
		}
		if a.status != http.StatusMultiStatus || principal != "/"+bob.login+"/" {
			t.Fatalf("bob's principal with a forged header: %q, want /%s/ (%d %s)", principal, bob.login, a.status, a.body)
		}
		// Radicale refuses bob alice's calendar (owner_only), so the
		// event is neither read nor written.
		aliceCal := base + "/" + alice.login + "/personal/"
		for _, req := range []struct{ method, url, body string }{
			{"GET", aliceCal + filepath.Base(event[0]), ""},
			{"PUT", aliceCal + "forged.ics", seedEvent(seedForgedUID)},
		} {
			a := bob.request(t, req.method, req.url, req.body, append([]string{"Content-Type", "text/calendar"}, forged...)...)
			if a.status != http.StatusForbidden || !strings.Contains(a.body, "Access to the requested resource forbidden") {
				t.Errorf("bob's %s in alice's calendar: %d %s (want Radicale's 403)", req.method, a.status, a.body)
			}
		}
		if got := itemsWithUID(t, root, seedForgedUID); len(got) != 0 {
			t.Errorf("forged event stored: %q", got)
		}
	})
}

// bencode encodes the values a .torrent file holds (BEP 3): integers, byte
// strings and dictionaries with sorted keys.
func bencode(w *bytes.Buffer, v any) {
	switch v := v.(type) {
	case int:
		fmt.Fprintf(w, "i%de", v)
	case string:
		fmt.Fprintf(w, "%d:%s", len(v), v)
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		w.WriteByte('d')
		for _, k := range keys {
			bencode(w, k)
			bencode(w, v[k])
		}
		w.WriteByte('e')
	default:
		panic(fmt.Sprintf("bencode: %T", v))
	}
}

// trackerlessTorrent is a one-file torrent with no announce URL: a client
// that is given it has nobody to ask for peers.
func trackerlessTorrent(name string, content []byte) (file []byte, infoHash string) {
	const pieceLength = 16384
	var pieces []byte
	for off := 0; off < len(content); off += pieceLength {
		sum := sha1.Sum(content[off:min(off+pieceLength, len(content))])
		pieces = append(pieces, sum[:]...)
	}
	info := map[string]any{"name": name, "length": len(content), "piece length": pieceLength, "pieces": string(pieces)}
	var b bytes.Buffer
	bencode(&b, info)
	h := sha1.Sum(b.Bytes())
	b.Reset()
	bencode(&b, map[string]any{"info": info, "created by": "gatehouse tests"})
	return b.Bytes(), hex.EncodeToString(h[:])
}

// delugeWeb calls Deluge's web JSON-RPC (deluge-torrent/deluge
// deluge/ui/web/json_api.py: POST /json, {"method", "params", "id"} in,
// {"result", "error", "id"} out; the auth.login cookie is the session).
type delugeWeb struct {
	t    testing.TB
	c    *http.Client
	base string
	id   int
}

func (d *delugeWeb) call(method string, params ...any) json.RawMessage {
	d.t.Helper()
	if params == nil {
		params = []any{}
	}
	d.id++
	body, _ := json.Marshal(map[string]any{"method": method, "params": params, "id": d.id})
	resp, err := d.c.Post(d.base+"/json", "application/json", bytes.NewReader(body))
	if err != nil {
		d.t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	var out struct {
		Result json.RawMessage
		Error  *struct {
			Message string
			Code    int
		}
		ID int
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		d.t.Fatalf("%s: %d %v", method, resp.StatusCode, err)
	}
	if out.Error != nil || out.ID != d.id {
		d.t.Fatalf("%s: error %+v, id %d (sent %d)", method, out.Error, out.ID, d.id)
	}
	return out.Result
}

func (d *delugeWeb) callInto(v any, method string, params ...any) {
	d.t.Helper()
	r := d.call(method, params...)
	if err := json.Unmarshal(r, v); err != nil {
		d.t.Fatalf("%s: %s: %v", method, r, err)
	}
}

// startDeluged runs Deluge's daemon in a network namespace of its own with
// only a loopback device, and returns a loopback address here that reaches
// its RPC port. libtorrent's session starts with DHT, UPnP, NAT-PMP and
// local peer discovery on, before deluged applies core.conf:
// deluge-torrent/deluge deluge/core/core.py makes it from a settings pack
// with flags=0, and libtorrent 2.0 turns those off for flags=0 only in its
// deprecated fingerprint constructors (arvidn/libtorrent src/session.cpp;
// checked against Debian's libtorrent 2.0.8). Only the namespace keeps them
// off every network; socat carries the RPC port out over a unix socket, the
// one thing both namespaces share.
func startDeluged(t testing.TB, dir string) string {
	t.Helper()
	// deluge/core/preferencesmanager.py DEFAULT_PREFS, with everything that
	// could reach out turned off all the same.
	prefs, _ := json.Marshal(map[string]any{
		"dht": false, "upnp": false, "natpmp": false, "lsd": false, "utpex": false,
		"new_release_check": false, "send_info": false,
		"listen_interface": "127.0.0.1", "random_port": false, "listen_ports": []int{6881, 6881},
		"download_location":     filepath.Join(dir, "downloads"),
		"torrentfiles_location": filepath.Join(dir, "downloads"),
		"move_completed_path":   filepath.Join(dir, "downloads"),
	})
	writeFile(t, filepath.Join(dir, "core.conf"), `{"file": 1, "format": 1}`+string(prefs))
	sock := filepath.Join(dir, "deluged.sock")
	deluged := startProgram(t, dir, "unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child", "--",
		"sh", "-c", `set -e
ip link set lo up
socat UNIX-LISTEN:"$1",fork TCP:127.0.0.1:58846 &
exec deluged --do-not-daemonize --config "$2" --ui-interface 127.0.0.1 --port 58846 --interface 127.0.0.1 --loglevel info`,
		"sh", sock, dir)
	// The daemon's RPC is TLS: a handshake through the socket answers only
	// once deluged itself listens (and has written the auth file
	// deluge-web reads).
	deluged.waitUntil(t, "answering RPC", func() error {
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		return tls.Client(c, &tls.Config{InsecureSkipVerify: true}).Handshake() // deluged's own self-signed certificate
	})
	return forwardLoopback(t, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	})
}

// Deluge's web UI behind an admin route: the admin logs in, connects the UI
// to the daemon, reads its settings and adds a torrent uploaded through the
// door; the UI's page and its JavaScript (over a megabyte) arrive byte for
// byte. A member who is not an admin gets gatehouse's 403, and Deluge never
// sees the request.
func TestDelugeWebThroughTheTailnetDoor(t *testing.T) {
	needPrograms(t, "deluged", "deluge-web", "unshare", "ip", "socat")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	dir := t.TempDir()
	daemon := startDeluged(t, dir)
	_, p, _ := net.SplitHostPort(daemon)
	daemonPort, _ := strconv.Atoi(p)
	// deluge/ui/web/server.py CONFIG_DEFAULTS listen on 0.0.0.0:8112; the
	// flags keep it on loopback. It shares the daemon's configuration
	// directory, as on the seed, for the daemon's localclient login.
	webPort := freePort(t)
	webLog := filepath.Join(dir, "web.log")
	web := startProgram(t, dir, "deluge-web", "--do-not-daemonize", "--config", dir,
		"--interface", "127.0.0.1", "--port", strconv.Itoa(webPort), "--loglevel", "info", "--logfile", webLog)
	direct := fmt.Sprintf("http://127.0.0.1:%d", webPort)
	web.waitUntil(t, "listening", dialsOK("tcp", direct[len("http://"):]))

	alice, bob := startSeedTailnet(t, ctx, tailnetRoute("deluge", direct, "admin", ""))
	base := "http://" + tailnettest.AddrOf(t, ctx, alice.s, "deluge")

	t.Run("page and scripts", func(t *testing.T) {
		page := alice.get(t, base+"/")
		if page.status != 200 || !strings.Contains(page.body, "<title>Deluge WebUI") {
			t.Fatalf("index: %d %.300s", page.status, page.body)
		}
		scripts := regexp.MustCompile(`src="(/js/[^"]+\.js)"`).FindAllStringSubmatch(page.body, -1)
		largest := 0
		for _, m := range scripts {
			through := alice.get(t, base+m[1])
			resp, err := http.Get(direct + m[1])
			if err != nil {
				t.Fatal(err)
			}
			want, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if through.status != 200 || through.body != string(want) {
				t.Errorf("%s: %d, %d bytes through the door, %d direct", m[1], through.status, len(through.body), len(want))
			}
			largest = max(largest, len(want))
		}
		if len(scripts) < 3 || largest < 1<<20 {
			t.Fatalf("scripts %q, largest %d bytes: not the page expected", scripts, largest)
		}
	})

	jar, _ := cookiejar.New(nil)
	rpc := &delugeWeb{t: t, c: &http.Client{Transport: alice.http.Transport, Jar: jar, Timeout: 30 * time.Second}, base: base} // hang guard
	var ok bool
	if rpc.callInto(&ok, "auth.login", "deluge"); !ok { // server.py's default password
		t.Fatal("auth.login with the default password: false")
	}
	if rpc.callInto(&ok, "web.connected"); ok {
		t.Fatal("web.connected before connecting: true")
	}
	var added []any // [true, host id]
	rpc.callInto(&added, "web.add_host", "127.0.0.1", daemonPort, "", "")
	hostID, _ := added[len(added)-1].(string)
	if len(added) != 2 || added[0] != true {
		t.Fatalf("web.add_host: %v", added)
	}
	var hosts [][]any
	rpc.callInto(&hosts, "web.get_hosts")
	if !slices.ContainsFunc(hosts, func(h []any) bool { return len(h) > 0 && h[0] == hostID }) {
		t.Fatalf("web.get_hosts %v lacks %s", hosts, hostID)
	}
	web.waitUntil(t, "seeing the daemon online", func() error {
		var status []any // [host id, "Online", version]
		rpc.callInto(&status, "web.get_host_status", hostID)
		if len(status) < 2 || status[1] != "Online" {
			return fmt.Errorf("web.get_host_status: %v", status)
		}
		return nil
	})
	var methods []string
	rpc.callInto(&methods, "web.connect", hostID)
	if !slices.Contains(methods, "core.get_config_value") {
		t.Fatalf("web.connect: methods %v", methods)
	}
	if rpc.callInto(&ok, "web.connected"); !ok {
		t.Fatal("web.connected after connecting: false")
	}
	var dht bool
	var downloads string
	rpc.callInto(&dht, "core.get_config_value", "dht")
	rpc.callInto(&downloads, "core.get_config_value", "download_location")
	if dht || downloads != filepath.Join(dir, "downloads") {
		t.Fatalf("daemon config: dht %v, download_location %q (not the test's core.conf)", dht, downloads)
	}

	// The web UI's way to add a torrent: upload the file (server.py
	// Upload), then web.add_torrents with the path the upload returned.
	torrent, infoHash := trackerlessTorrent("gatehouse-seed.txt", bytes.Repeat([]byte("seed "), 5000))
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("file", "gatehouse-seed.torrent")
	fw.Write(torrent)
	mw.Close()
	resp, err := rpc.c.Post(base+"/upload", mw.FormDataContentType(), &form)
	if err != nil {
		t.Fatal(err)
	}
	var upload struct {
		Success bool
		Files   []string
	}
	json.NewDecoder(resp.Body).Decode(&upload)
	resp.Body.Close()
	if resp.StatusCode != 200 || !upload.Success || len(upload.Files) != 1 {
		t.Fatalf("upload: %d %+v", resp.StatusCode, upload)
	}
	var info struct{ Name, InfoHash string }
	var raw map[string]any
	rpc.callInto(&raw, "web.get_torrent_info", upload.Files[0])
	info.Name, _ = raw["name"].(string)
	info.InfoHash, _ = raw["info_hash"].(string)
	if info.Name != "gatehouse-seed.txt" || info.InfoHash != infoHash {
		t.Fatalf("web.get_torrent_info: %v (want hash %s)", raw, infoHash)
	}
	rpc.call("web.add_torrents", []map[string]any{{
		"path": upload.Files[0], "options": map[string]any{"add_paused": true, "download_location": downloads},
	}})
	web.waitUntil(t, "listing the torrent", func() error {
		var ui struct {
			Connected bool
			Torrents  map[string]struct{ Name string }
		}
		rpc.callInto(&ui, "web.update_ui", []string{"name", "state"}, map[string]any{})
		if !ui.Connected || ui.Torrents[infoHash].Name != "gatehouse-seed.txt" {
			return fmt.Errorf("web.update_ui: %+v", ui)
		}
		return nil
	})
	var status struct {
		Name      string
		Trackers  []any
		TotalSize int `json:"total_size"`
	}
	rpc.callInto(&status, "core.get_torrent_status", infoHash, []string{"name", "trackers", "total_size"})
	if status.Name != "gatehouse-seed.txt" || len(status.Trackers) != 0 || status.TotalSize != 25000 {
		t.Fatalf("core.get_torrent_status: %+v", status)
	}

	t.Run("member who is not an admin", func(t *testing.T) {
		const marker = "bob-was-here-3f9c"
		for _, a := range []answer{
			bob.get(t, base+"/"+marker),
			bob.get(t, base+"/js/deluge-all-debug.js?"+marker),
			bob.request(t, "POST", base+"/json?"+marker, `{"method":"web.connected","params":[],"id":1}`,
				"Content-Type", "application/json", "Cookie", jarCookies(jar, base+"/json")),
		} {
			if a.status != http.StatusForbidden || !strings.Contains(a.body, bob.login) {
				t.Errorf("bob: %d %.200s (want gatehouse's 403 naming %s)", a.status, a.body, bob.login)
			}
		}
		// Twisted logs every request deluge-web answers. An admin's
		// request after bob's is in the log, so bob's would be too had
		// Deluge seen them.
		const after = "alice-after-bob-3f9c"
		alice.get(t, base+"/"+after)
		var log []byte
		web.waitUntil(t, "logging the admin's request", func() error {
			log, _ = os.ReadFile(webLog)
			if !bytes.Contains(log, []byte("GET /"+after)) {
				return fmt.Errorf("no GET /%s in deluge-web's log", after)
			}
			return nil
		})
		for _, line := range strings.Split(string(log), "\n") {
			if strings.Contains(line, marker) {
				t.Errorf("deluge-web saw bob's request: %s", line)
			}
		}
	})
}

// jarCookies is the Cookie header jar would send to url: a stolen session
// must not help a peer the door refuses.
func jarCookies(jar http.CookieJar, rawURL string) string {
	req, _ := http.NewRequest("GET", rawURL, nil)
	for _, c := range jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	return req.Header.Get("Cookie")
}
