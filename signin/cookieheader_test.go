package signin

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// cookiesChunked is how the session cookie was read before the scanner:
// through Request.Cookies, the reference the scanner must agree with.
func cookiesChunked(lines []string, base string) string {
	r := &http.Request{Header: http.Header{"Cookie": lines}}
	cookies := r.Cookies()
	var b strings.Builder
	first := ""
	for i := 0; i < maxChunks; i++ {
		name := chunkName(base, i)
		found := 0
		var v string
		for _, c := range cookies {
			if c.Name == name {
				found++
				v = c.Value
			}
		}
		if found != 1 {
			if found > 1 {
				return ""
			}
			break
		}
		if i == 0 {
			first = v
			continue
		}
		if i == 1 {
			b.WriteString(first)
		}
		b.WriteString(v)
	}
	if b.Len() == 0 {
		return first
	}
	return b.String()
}

var cookieLines = [][]string{
	{"__Secure-gatehouse=abc"},
	{"a=1; __Secure-gatehouse=abc; b=2"},
	{"  __Secure-gatehouse=abc  ;b=2"},
	{"\t__Secure-gatehouse =abc"},
	{"__Secure-gatehouse= abc"},
	{`__Secure-gatehouse="abc"`},
	{`__Secure-gatehouse="abc`},
	{`__Secure-gatehouse=""`},
	{`__Secure-gatehouse="`},
	{"__Secure-gatehouse=a\\b"},
	{"__Secure-gatehouse=a b"},
	{"__Secure-gatehouse=a,b"},
	{"__Secure-gatehouse=a\x7fb; __Secure-gatehouse=ok"},
	{"__Secure-gatehouse=x; __Secure-gatehouse=y"},
	{"__Secure-gatehouse=x", "__Secure-gatehouse=y"},
	{"__secure-gatehouse=x"},
	{"__Secure-gatehousex=x; __Secure-gatehouse-0=y; __Secure-gatehouse-4=z"},
	{"__Secure-gatehouse=a; __Secure-gatehouse-1=b; __Secure-gatehouse-2=c"},
	{"__Secure-gatehouse-1=b; __Secure-gatehouse=a"},
	{"__Secure-gatehouse=a; __Secure-gatehouse-2=c"},
	{"__Secure-gatehouse=a; __Secure-gatehouse-1=b; __Secure-gatehouse-1=b"},
	{"__Secure-gatehouse=a; __Secure-gatehouse-2=c; __Secure-gatehouse-2=d"},
	{"__Secure-gatehouse=a", "x=1; __Secure-gatehouse-1=b"},
	{"__Secure-gatehouse"},
	{"__Secure-gatehouse;"},
	{";;; __Secure-gatehouse=a;;"},
	{"__Secure-gatehouse-tokens=t; __Secure-gatehouse=s"},
	{"__Secure-gatehouse=a=b=c"},
	{"bad name=1; __Secure-gatehouse=a"},
	{""},
	{},
}

// The scanner reads the session chunks exactly as Request.Cookies does,
// and joins them by the same rules (a name sent twice refuses the value).
func TestReadChunkedAgreesWithRequestCookies(t *testing.T) {
	for _, lines := range cookieLines {
		for _, base := range []string{"__Secure-gatehouse", "__Host-gatehouse", tokensCookie} {
			if got, want := readChunked(lines, base), cookiesChunked(lines, base); got != want {
				t.Errorf("%q, %s: scanner %q, Request.Cookies %q", lines, base, got, want)
			}
		}
	}
	for lines, want := range map[string]string{
		"a=1; __Secure-gatehouse=abc; b=2":                                         "abc",
		`__Secure-gatehouse="abc"`:                                                 "abc",
		"__Secure-gatehouse=a; __Secure-gatehouse-1=b; x=; __Secure-gatehouse-2=c": "abc",
		"__Secure-gatehouse=x; __Secure-gatehouse=y":                               "",
		"__secure-gatehouse=x":                                                     "",
	} {
		if got := readChunked([]string{lines}, "__Secure-gatehouse"); got != want {
			t.Errorf("%q: %q, want %q", lines, got, want)
		}
	}
}

// The word-at-a-time check refuses exactly the bytes the byte rule
// refuses, wherever in a word they stand, beside any other byte (a
// borrow from one byte to the next must not hide or invent one).
func TestCookieValueEveryByte(t *testing.T) {
	for c := 0; c < 256; c++ {
		for _, beside := range []byte{'A', 0x00, 0x1f, 0x20, 0x7f, 0x80, 0xff} {
			for pos := 0; pos < 19; pos++ {
				v := []byte(strings.Repeat("A", 19))
				v[pos] = byte(c)
				if pos > 0 {
					v[pos-1] = beside
				}
				want := cookieByteOK(byte(c)) && (pos == 0 || cookieByteOK(beside))
				if _, got := cookieValue(string(v)); got != want {
					t.Fatalf("%q: %v, want %v", v, got, want)
				}
			}
		}
	}
}

func FuzzReadChunked(f *testing.F) {
	for _, lines := range cookieLines {
		f.Add(strings.Join(lines, "\n"))
	}
	f.Fuzz(func(t *testing.T, in string) {
		// Request.Cookies gives up on more than 3000 cookies; the scanner
		// is not asked to.
		if strings.Count(in, ";") > 2000 {
			return
		}
		lines := strings.Split(in, "\n")
		for _, base := range []string{"__Secure-gatehouse", tokensCookie} {
			if got, want := readChunked(lines, base), cookiesChunked(lines, base); got != want {
				t.Errorf("%q, %s: scanner %q, Request.Cookies %q", lines, base, got, want)
			}
		}
	})
}

func BenchmarkReadChunked(b *testing.B) {
	lines := []string{"immich_locale=en; __Secure-gatehouse=" + strings.Repeat("A", 355) + "; theme=dark"}
	for b.Loop() {
		_ = readChunked(lines, "__Secure-gatehouse")
	}
}

// The common cases cost no allocation: reading a one-chunk session, and
// a Cookie header without gatehouse's cookies passing StripCookies.
func TestCookieHeaderWithoutAllocation(t *testing.T) {
	lines := []string{"immich_locale=en; __Secure-gatehouse=" + strings.Repeat("A", 400) + "; theme=dark"}
	if n := testing.AllocsPerRun(100, func() { _ = readChunked(lines, "__Secure-gatehouse") }); n != 0 {
		t.Errorf("reading a one-chunk session: %v allocations", n)
	}
	s := &SignIn{names: namesFor("example.com")}
	h := http.Header{"Cookie": {"immich_locale=en; theme=dark; __cf_bm=x"}}
	if n := testing.AllocsPerRun(100, func() { s.StripCookies(h) }); n != 0 {
		t.Errorf("StripCookies without gatehouse cookies: %v allocations", n)
	}
	if got := h["Cookie"]; !slices.Equal(got, []string{"immich_locale=en; theme=dark; __cf_bm=x"}) {
		t.Errorf("Cookie = %q", got)
	}
}

func TestStripCookieLines(t *testing.T) {
	for _, c := range []struct {
		in, want []string
	}{
		{[]string{"a=1; b=2"}, []string{"a=1; b=2"}},
		{[]string{"a=1;b=2;  __Host-gatehouse=x ; c=3"}, []string{"a=1; b=2; c=3"}},
		{[]string{"__SECURE-GATEHOUSE-tokens=x; a=1"}, []string{"a=1"}},
		{[]string{"a=1", "__Secure-gatehouse=x; __Secure-gatehouse-tokens-1=y", "b=2"}, []string{"a=1", "b=2"}},
		{[]string{"__Host-gatehouse-flow-abc"}, nil},
		{[]string{"x__Host-gatehouse=1; __Host-gatehousex=2"}, []string{"x__Host-gatehouse=1; __Host-gatehousex=2"}},
	} {
		got, _ := stripCookieLines(c.in)
		if !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, want %q", c.in, got, c.want)
		}
	}
}

// The tokens memory forgets what a revocation names and stays bounded.
func TestTokenMemory(t *testing.T) {
	now := time.Now()
	later := now.Add(time.Hour).UnixNano()
	tm := newTokenMemory(16)
	sess := func(id, sub, sid string) *session { return &session{ID: id, Sub: sub, SID: sid, Expires: later} }
	tm.put(sess("a1", "alice", "k1"), tokens{Refresh: "r", Checked: 2}, now)
	tm.put(sess("a1", "alice", "k1"), tokens{Refresh: "older", Checked: 1}, now)
	if got, _ := tm.get("a1"); got.Refresh != "r" {
		t.Errorf("an older copy replaced a later one: %q", got.Refresh)
	}
	tm.put(sess("a2", "alice", "k2"), tokens{Checked: 1}, now)
	tm.put(sess("a3", "alice", ""), tokens{Checked: 1}, now)
	tm.put(sess("b1", "bob", "k3"), tokens{Checked: 1}, now)
	tm.forget(revokeSID + "k1")
	if _, ok := tm.get("a1"); ok {
		t.Error("sid revocation kept the tokens")
	}
	tm.forget(revokeNoSID + "alice")
	if _, ok := tm.get("a3"); ok {
		t.Error("no-sid revocation kept the tokens")
	}
	if _, ok := tm.get("a2"); !ok {
		t.Error("no-sid revocation dropped a session with a sid")
	}
	tm.forget(revokeSubject + "alice")
	tm.forget(revokeSession + "b1")
	if tm.size() != 0 {
		t.Errorf("%d entries left", tm.size())
	}
	// Past the bound: expired sessions go first, then the least recently
	// renewed.
	tm.put(&session{ID: "gone", Expires: now.Add(-time.Second).UnixNano()}, tokens{Checked: 100}, now)
	for i := 0; i < 40; i++ {
		tm.put(sess(string(rune('A'+i)), "u", ""), tokens{Checked: int64(i)}, now)
		if tm.size() > 16 {
			t.Fatalf("%d entries, bound 16", tm.size())
		}
	}
	if _, ok := tm.get("gone"); ok {
		t.Error("an expired session's tokens outlived the bound")
	}
	if _, ok := tm.get(string(rune('A' + 39))); !ok {
		t.Error("the latest entry was dropped")
	}
	if _, ok := tm.get("A"); ok {
		t.Error("the least recently renewed entry was kept")
	}
}
