package proxy

import (
	"io"
	"net/http"
	"time"

	"gatehouse/auth"
	"gatehouse/page"
	"gatehouse/routes"
)

// prepare readies a decided request for its backend: the body within the
// route's max_body and the stall timeout, the decided path, the forwarding
// and identity headers gatehouse vouches for, and none of gatehouse's own
// cookies. w is the server's own writer. It answers an upload declared
// larger than max_body itself (413) and then returns false.
func (h *doorHandler) prepare(w http.ResponseWriter, v *visit, r *http.Request) bool {
	if max := v.m.Route.MaxBodyOn(h.door); max > 0 {
		if r.ContentLength > max {
			page.Write(v.lw, http.StatusRequestEntityTooLarge, tooLargePage(v.routeName, max, h.doorName, v.m.Route.Doors[routes.LAN] != nil))
			return false
		}
		if r.Body != nil && r.Body != http.NoBody {
			// The server's writer, so net/http knows to close the
			// connection after the 413 instead of reading the rest of
			// the upload.
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &stallReader{ReadCloser: r.Body, rc: http.NewResponseController(w), stall: v.st.table.Config.Server.StallTimeout}
	}
	r.URL.Path, r.URL.RawPath = v.path, ""
	setOutboundHeaders(r.Header, r.Host, v.fwd, v.id, v.m.Route.Doors[h.door])
	if v.signIn != nil {
		// The session cookie is the gateway's, on every route of the door
		// (with cookie_domain it reaches app routes too): never forwarded.
		v.signIn.StripCookies(r.Header)
	}
	return true
}

// setOutboundHeaders puts on the request the forwarding headers gatehouse
// vouches for and the identity headers the route asks for. They are set on
// the inbound request; both forwarding paths send them after hop-by-hop
// removal, so a client naming them in Connection cannot drop them.
func setOutboundHeaders(hdr http.Header, host string, fwd forwarded, id auth.Identity, dr *routes.DoorRule) {
	if fwd.client.IsValid() {
		ip := []string{fwd.client.String()}
		hdr["X-Forwarded-For"] = ip
		hdr["X-Real-Ip"] = ip
	}
	// Shared, never-modified slices: one allocation fewer per request.
	if fwd.proto == "https" {
		hdr["X-Forwarded-Proto"] = protoHTTPS
	} else {
		hdr["X-Forwarded-Proto"] = protoHTTP
	}
	hdr["X-Forwarded-Host"] = []string{host}
	if p := id.Tailnet; p != nil && p.Login != "" {
		for _, name := range dr.IdentityHeaders {
			v := p.Login
			if name == "Tailscale-User-Name" || name == "Remote-Name" {
				v = p.Name
			}
			hdr[name] = []string{v}
		}
	}
	if f := id.Family; f != nil {
		for _, name := range dr.IdentityHeaders {
			if v, ok := f.HeaderValue(name); ok {
				hdr[name] = []string{v}
			}
		}
	}
}

var (
	protoHTTPS = []string{"https"}[:1:1]
	protoHTTP  = []string{"http"}[:1:1]
)

// stallReader keeps a no-progress deadline on the request body: a stalled
// upload is cut, a slow but steady one goes on for as long as it takes.
type stallReader struct {
	io.ReadCloser
	rc       *http.ResponseController
	stall    time.Duration
	deadline time.Time
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.stall > 0 {
		now := time.Now()
		if s.deadline.Sub(now) <= s.stall/2 {
			s.deadline = now.Add(s.stall)
			_ = s.rc.SetReadDeadline(s.deadline)
		}
	}
	return s.ReadCloser.Read(p)
}
