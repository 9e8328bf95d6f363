package forward

import (
	"bufio"
	"net"
	"net/http"
)

// heldHeaders keeps the headers the caller set before forwarding (a renewed
// session cookie) for the final answer. Both paths pass a 1xx answer on by
// adding its headers to the writer's, writing, and clearing them
// (ReverseProxy's Got1xxResponse, forwardInformational): headers already
// there would go out with the 1xx, where browsers ignore Set-Cookie, and
// then be gone.
type heldHeaders struct {
	http.ResponseWriter
	held     http.Header // nil once released
	released bool
}

// holdHeaders takes the headers set on w aside until the final answer.
func holdHeaders(w http.ResponseWriter) *heldHeaders {
	h := w.Header()
	hw := &heldHeaders{ResponseWriter: w, held: h.Clone()}
	clear(h)
	return hw
}

// release puts the held headers back, before the answer's own: the final
// answer's header gets them, or the caller's error page when there is no
// answer.
func (hw *heldHeaders) release() {
	if hw.released {
		return
	}
	hw.released = true
	h := hw.ResponseWriter.Header()
	for k, vs := range hw.held {
		h[k] = append(vs, h[k]...)
	}
	hw.held = nil
}

func (hw *heldHeaders) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		hw.release()
	}
	hw.ResponseWriter.WriteHeader(code)
}

func (hw *heldHeaders) Write(p []byte) (int, error) {
	hw.release()
	return hw.ResponseWriter.Write(p)
}

// Hijack is ReverseProxy's way into an upgrade: it writes the 101 itself
// with the writer's header, which gets the held ones first.
func (hw *heldHeaders) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hw.release()
	return http.NewResponseController(hw.ResponseWriter).Hijack()
}

func (hw *heldHeaders) Unwrap() http.ResponseWriter { return hw.ResponseWriter }
