// Package accesslog writes the doors' requests in the Combined Log Format
// (Apache's "combined", the format fail2ban, CrowdSec and GoAccess read
// without configuration) to a file that is reopened on request, so
// logrotate can move it away and send SIGUSR1.
//
//	client - identity [time] "METHOD URI PROTO" status bytes "referer" "user-agent"
//
// The user field carries the identity the door established (tailnet
// login or tag, family member's email), "-" without one.
package accesslog

import (
	"fmt"
	"os"
	"strconv"
	"sync"

	"gatehouse/proxy"
)

// File is an access log file open for appending.
type File struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// Open opens (creating) path for appending.
func Open(path string) (*File, error) {
	l := &File{path: path}
	if err := l.Reopen(); err != nil {
		return nil, err
	}
	return l, nil
}

// Reopen opens the path again and closes the old file: after logrotate
// renamed it, new lines go to a new file of the old name.
func (l *File) Reopen() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("access log: %w", err)
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the file.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Write appends one request's line. Each line is one write(2) to an
// O_APPEND file, so lines never interleave.
func (l *File) Write(a proxy.Answer) {
	line := Format(nil, a)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		_, _ = l.f.Write(line)
	}
}

// Format appends a's line in the Combined Log Format to b.
func Format(b []byte, a proxy.Answer) []byte {
	if a.Client.IsValid() {
		b = a.Client.AppendTo(b)
	} else {
		b = append(b, '-')
	}
	b = append(b, " - "...)
	if who := a.Identity.String(); who != "" {
		// The user field is unquoted: nothing in it may split the line's
		// fields, so spaces are escaped too.
		b = appendEscaped(b, who, true)
	} else {
		b = append(b, '-')
	}
	b = append(b, " ["...)
	b = a.Start.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, `] "`...)
	b = appendEscaped(b, a.Method, false)
	b = append(b, ' ')
	b = appendEscaped(b, a.URI, false)
	b = append(b, ' ')
	b = appendEscaped(b, a.Proto, false)
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(a.Status), 10)
	b = append(b, ' ')
	if a.Bytes > 0 {
		b = strconv.AppendInt(b, a.Bytes, 10)
	} else {
		b = append(b, '-')
	}
	b = append(b, ` "`...)
	b = appendOrDash(b, a.Referer)
	b = append(b, `" "`...)
	b = appendOrDash(b, a.UserAgent)
	return append(b, "\"\n"...)
}

func appendOrDash(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	return appendEscaped(b, s, false)
}

// appendEscaped escapes s as Apache httpd escapes its log items
// (apache/httpd server/util.c, ap_escape_logitem), which the readers of
// this format expect: `"` and `\` get a backslash, \b \n \r \t \v their
// letter, other control bytes (and, for the unquoted user field, spaces)
// \xhh. A client can forge neither a field nor a line.
var controlLetter = [256]byte{'\b': 'b', '\n': 'n', '\r': 'r', '\t': 't', '\v': 'v'}

func appendEscaped(b []byte, s string, space bool) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case controlLetter[c] != 0:
			b = append(b, '\\', controlLetter[c])
		case c < 0x20 || c == 0x7f || space && c == ' ':
			b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return b
}
