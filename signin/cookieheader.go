package signin

import (
	"encoding/binary"
	"net/textproto"
	"strconv"
	"strings"

	"gatehouse/auth"
)

// Reading and trimming the Cookie header. Every family request pays for
// these, so they scan the header lines themselves instead of parsing every
// cookie into an *http.Cookie (Request.Cookies): the bytes of a cookie
// that is not gatehouse's are looked at once, to find the next ';'.

// chunkValues finds the chunks of the cookie called base in the Cookie
// header lines: vals[i] is the value of chunk i (base, base-1, …) and n[i]
// how often the request sent it (at most 2 is counted). It reads the lines
// exactly as net/http's Request.Cookies does — parts split at ';' and
// trimmed of ASCII space, the name trimmed and compared exactly, a value in
// double quotes unquoted, a value with a byte a cookie may not hold
// skipped — and allocates nothing: the values are substrings of the lines.
func chunkValues(lines []string, base string) (vals [maxChunks]string, n [maxChunks]uint8) {
	for _, line := range lines {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = textproto.TrimString(part)
			// The name starts the part: anything else is not ours.
			if !strings.HasPrefix(part, base) {
				continue
			}
			name, val, _ := strings.Cut(part, "=")
			i := chunkIndex(textproto.TrimString(name), base)
			if i < 0 {
				continue
			}
			v, ok := cookieValue(val)
			if !ok {
				continue
			}
			vals[i] = v
			if n[i] < 2 {
				n[i]++
			}
		}
	}
	return vals, n
}

// chunkIndex is i for the name chunkName(base, i), else -1.
func chunkIndex(name, base string) int {
	if name == base {
		return 0
	}
	if len(name) == len(base)+2 && name[len(base)] == '-' && strings.HasPrefix(name, base) {
		if d := int(name[len(base)+1] - '0'); d >= 1 && d < maxChunks {
			return d
		}
	}
	return -1
}

func chunkName(base string, i int) string {
	if i == 0 {
		return base
	}
	return base + "-" + strconv.Itoa(i)
}

// cookieValue is net/http's reading of a request cookie's value: one pair
// of surrounding double quotes removed, then every byte must be one a
// cookie value may hold.
func cookieValue(raw string) (string, bool) {
	if len(raw) > 1 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		raw = raw[1 : len(raw)-1]
	}
	// The session value (hundreds of bytes) is checked on every family
	// request, so eight bytes at a time: the byte loop was gatehouse's
	// largest own cost in the bench's family-route profile, and this takes
	// about half its time (BenchmarkReadChunked).
	i := 0
	for ; i+8 <= len(raw); i += 8 {
		if !cookieWordOK(binary.LittleEndian.Uint64([]byte(raw[i : i+8]))) {
			return "", false
		}
	}
	for ; i < len(raw); i++ {
		if !cookieByteOK(raw[i]) {
			return "", false
		}
	}
	return raw, true
}

func cookieByteOK(b byte) bool {
	return b >= 0x20 && b < 0x7f && b != '"' && b != ';' && b != '\\'
}

// cookieWordOK is cookieByteOK for all eight bytes of x at once. For one
// byte y, (y - 1) &^ y has its top bit set exactly when y is 0; over a
// whole word some top bit is set exactly when some byte is 0 (a borrow
// may mark bytes above that one too, never when there is none). So
// zero(x ^ c repeated) finds a byte equal to c, and (x - 0x20 repeated)
// &^ x one below 0x20. A byte of 0x80 or more has its top bit set in x.
func cookieWordOK(x uint64) bool {
	const ones, tops = 0x0101010101010101, 0x8080808080808080
	zero := func(y uint64) uint64 { return (y - ones) &^ y }
	bad := x | (x-0x20*ones)&^x | zero(x^0x7f*ones) | zero(x^'"'*ones) | zero(x^';'*ones) | zero(x^'\\'*ones)
	return bad&tops == 0
}

// readChunked joins the chunks of the cookie called base. A chunk name
// sent twice (two scopes) makes the value ambiguous: it is refused. One
// chunk, the usual case, comes back without a copy.
func readChunked(lines []string, base string) string {
	vals, n := chunkValues(lines, base)
	if n[0] != 1 {
		return ""
	}
	size := len(vals[0])
	last := 0
	for i := 1; i < maxChunks; i++ {
		if n[i] != 1 {
			if n[i] > 1 {
				return ""
			}
			break
		}
		size += len(vals[i])
		last = i
	}
	if last == 0 {
		return vals[0]
	}
	var b strings.Builder
	b.Grow(size)
	for i := 0; i <= last; i++ {
		b.WriteString(vals[i])
	}
	return b.String()
}

// stripCookieLines removes gatehouse's own cookies (auth.IsGatehouseCookie)
// from Cookie header lines, rewriting lines in place: lines without one
// stay as they are; a line with one is rebuilt from the other cookies,
// "; "-separated, in one builder; a line left empty is dropped (no
// allocation for that, the usual line of a family request that carries
// only the session). changed reports whether anything was removed.
func stripCookieLines(lines []string) (out []string, changed bool) {
	out = lines[:0]
	for _, line := range lines {
		if !hasGatehouseCookie(line) {
			out = append(out, line)
			continue
		}
		changed = true
		if kept := stripLine(line); kept != "" {
			out = append(out, kept)
		}
	}
	return out, changed
}

func hasGatehouseCookie(line string) bool {
	// Every gatehouse cookie name begins with "__".
	if !strings.Contains(line, "__") {
		return false
	}
	for len(line) > 0 {
		var part string
		part, line, _ = strings.Cut(line, ";")
		if isGatehousePart(part) {
			return true
		}
	}
	return false
}

func isGatehousePart(part string) bool {
	name, _, _ := strings.Cut(part, "=")
	return auth.IsGatehouseCookie(textproto.TrimString(name))
}

func stripLine(line string) string {
	var b strings.Builder
	for len(line) > 0 {
		var part string
		part, line, _ = strings.Cut(line, ";")
		part = textproto.TrimString(part)
		if part == "" || isGatehousePart(part) {
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(line) + len(part))
		} else {
			b.WriteString("; ")
		}
		b.WriteString(part)
	}
	return b.String()
}
