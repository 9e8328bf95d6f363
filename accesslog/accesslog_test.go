package accesslog

import (
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gatehouse/auth"
	"gatehouse/proxy"
)

var start = time.Date(2026, 12, 1, 21, 4, 5, 0, time.FixedZone("", 3600))

func TestFormat(t *testing.T) {
	cases := []struct {
		name string
		a    proxy.Answer
		want string
	}{
		{"anonymous", proxy.Answer{Method: "GET", URI: "/albums?x=1", Proto: "HTTP/1.1", Status: 200, Bytes: 512,
			Client: netip.MustParseAddr("203.0.113.9"), Start: start, Referer: "https://photos.example.com/", UserAgent: "Mozilla/5.0 (X11)"},
			`203.0.113.9 - - [01/Dec/2026:21:04:05 +0100] "GET /albums?x=1 HTTP/1.1" 200 512 "https://photos.example.com/" "Mozilla/5.0 (X11)"` + "\n"},
		{"family member, no body", proxy.Answer{Method: "POST", URI: "/api/auth/login", Proto: "HTTP/2.0", Status: 401,
			Client: netip.MustParseAddr("2001:db8::1"), Start: start, Identity: auth.Identity{Family: &auth.FamilyUser{Email: "kid@example.com"}}},
			`2001:db8::1 - kid@example.com [01/Dec/2026:21:04:05 +0100] "POST /api/auth/login HTTP/2.0" 401 - "-" "-"` + "\n"},
		{"forged fields", proxy.Answer{Method: "GET", URI: "/\" 200 1 \"x", Proto: "HTTP/1.1", Status: 404, Start: start,
			UserAgent: "a\"b\\c\nd\x01", Identity: auth.Identity{Tailnet: &auth.TailnetPeer{Login: "a b@example.com"}}},
			`- - a\x20b@example.com [01/Dec/2026:21:04:05 +0100] "GET /\" 200 1 \"x HTTP/1.1" 404 - "-" "a\"b\\c\nd\x01"` + "\n"},
	}
	for _, c := range cases {
		if got := string(Format(nil, c.a)); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

// fail2banFilter is the filter docs/dashboard.md gives, as fail2ban reads
// it: <HOST> stands for the address.
// The request is matched with its escapes ("(?:[^"\\]|\\.)*"): a plain
// "[^"]*" would end at an escaped quote inside a forged URI.
const fail2banFilter = `^<HOST> \S+ \S+ \[[^\]]+\] "(?:[^"\\]|\\.)*" (?:401|403|429) `

// TestFail2banFilterMatches: the documented filter finds the client of a
// refusal, and never a forged one in a field the client wrote.
func TestFail2banFilterMatches(t *testing.T) {
	re := regexp.MustCompile(strings.Replace(fail2banFilter, "<HOST>", `(?P<host>\S+)`, 1))
	refused := string(Format(nil, proxy.Answer{Method: "POST", URI: "/login", Proto: "HTTP/1.1", Status: 401,
		Client: netip.MustParseAddr("203.0.113.9"), Start: start}))
	if m := re.FindStringSubmatch(refused); m == nil || m[1] != "203.0.113.9" {
		t.Errorf("filter on %q: %v", refused, m)
	}
	forged := string(Format(nil, proxy.Answer{Method: "GET", URI: "/x\" 401 - \"\n198.51.100.1 - - [x] \"GET / HTTP/1.1\" 401 ", Proto: "HTTP/1.1",
		Status: 200, Client: netip.MustParseAddr("203.0.113.10"), Start: start}))
	if strings.Count(forged, "\n") != 1 || re.MatchString(forged) {
		t.Errorf("a forged URI made a refusal line: %q", forged)
	}
}

// TestReopen: after the file is renamed away (logrotate) and Reopen is
// called (SIGUSR1), new lines go to a new file of the old name.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a := proxy.Answer{Method: "GET", URI: "/one", Proto: "HTTP/1.1", Status: 200, Start: start}
	l.Write(a)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	a.URI = "/two"
	l.Write(a) // still the renamed file
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	a.URI = "/three"
	l.Write(a)
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), "/one") || !strings.Contains(string(old), "/two") || strings.Contains(string(old), "/three") {
		t.Errorf("rotated file: %s", old)
	}
	if string(cur) != string(Format(nil, a)) {
		t.Errorf("new file: %q", cur)
	}
}
