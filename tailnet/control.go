package tailnet

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"tailscale.com/tailcfg"
)

// tailscaleControl is the control server a node uses when control_url is
// not set (tsnet's default).
const tailscaleControl = "https://controlplane.tailscale.com"

// controlName is the control server as the logs name it.
func controlName(controlURL string) string {
	if controlURL == "" {
		return tailscaleControl
	}
	return controlURL
}

// isTailscaleControl reports whether nodes talk to Tailscale's own
// control server, where HTTPS certificates are a switch in the admin
// console; other control servers (Headscale) issue none.
func isTailscaleControl(controlURL string) bool {
	if controlURL == "" {
		return true
	}
	u, err := url.Parse(controlURL)
	if err != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	return h == "tailscale.com" || strings.HasSuffix(h, ".tailscale.com")
}

// plainHTTPNotice says why the tailnet nodes serve plain HTTP and what to
// do about it, for the control server in use.
func plainHTTPNotice(controlURL string) string {
	if isTailscaleControl(controlURL) {
		return "HTTPS certificates are off for this tailnet, so the tailnet nodes serve plain HTTP on port 80 (WireGuard still encrypts the traffic). " +
			"Turn on MagicDNS and HTTPS Certificates in the Tailscale admin console (DNS page) to get https://<node>.<tailnet>.ts.net."
	}
	return "the control server " + controlURL + " gives this tailnet no HTTPS certificates (Headscale issues none), so the tailnet nodes serve plain HTTP on port 80 " +
		"(WireGuard still encrypts the traffic); open them as http://<node>, or by their tailnet address without MagicDNS."
}

// probeControl asks the control server for its public key, the first
// thing every node asks it. Any HTTP answer means it is there; an error
// says why not (no route, refused, a name that does not resolve, TLS).
func probeControl(ctx context.Context, controlURL string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u := strings.TrimSuffix(controlName(controlURL), "/") + fmt.Sprintf("/key?v=%d", tailcfg.CurrentCapabilityVersion)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return nil
}

// watchControl runs while the tailnet door starts: when the control server
// does not answer, it says so once (nodes wait for it without a word of
// their own), then once more when it answers. The other doors serve
// meanwhile.
func (n *Nodes) watchControl(every time.Duration) {
	name := controlName(n.cfg.ControlURL)
	waiting := false
	for {
		err := probeControl(n.ctx, n.cfg.ControlURL)
		if n.ctx.Err() != nil {
			return
		}
		if err == nil {
			if waiting {
				n.opts.Log.Info("tailnet door: the control server answers now; nodes are joining", "control", name)
			}
			return
		}
		if !waiting {
			n.opts.Log.Warn("tailnet door waiting: the control server does not answer; tailnet nodes come up once it does, the Cloudflare door serves meanwhile",
				"control", name, "err", err)
			waiting = true
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
