package main

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
)

// The deterministic bytes served by /blob and sent to /upload: byte i of
// any stream is pattern[i % patternLen]. The pattern is pseudo-random from
// a fixed seed, and its length is not a power of two, so a proxy that
// drops, repeats or reorders a buffer's worth of bytes (or answers a Range
// request from the wrong offset) is caught by a plain comparison. Nothing
// is held in memory but the pattern itself.
const patternLen = 1<<20 + 7

var pattern = func() []byte {
	p := make([]byte, patternLen)
	r := rand.New(rand.NewChaCha8([32]byte{'g', 'a', 't', 'e', 'h', 'o', 'u', 's', 'e'}))
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}()

// patternReader reads size bytes of the pattern from offset 0; it seeks,
// so http.ServeContent answers Range requests from it.
type patternReader struct {
	size, off int64
}

func newPatternReader(size int64) *patternReader { return &patternReader{size: size} }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	if rem := p.size - p.off; int64(len(b)) > rem {
		b = b[:rem]
	}
	n := fillPattern(b, p.off)
	p.off += int64(n)
	return n, nil
}

func (p *patternReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += p.off
	case io.SeekEnd:
		offset += p.size
	default:
		return 0, errors.New("bad whence")
	}
	if offset < 0 {
		return 0, errors.New("negative offset")
	}
	p.off = offset
	return offset, nil
}

// fillPattern fills b with the pattern's bytes from stream offset off.
func fillPattern(b []byte, off int64) int {
	n := 0
	i := int(off % patternLen)
	for n < len(b) {
		c := copy(b[n:], pattern[i:])
		n += c
		i = 0
	}
	return n
}

// matchesPattern reports whether b is the pattern's bytes from offset off.
func matchesPattern(b []byte, off int64) bool {
	i := int(off % patternLen)
	for len(b) > 0 {
		c := min(len(b), patternLen-i)
		if !bytes.Equal(b[:c], pattern[i:i+c]) {
			return false
		}
		b = b[c:]
		i = 0
	}
	return true
}
