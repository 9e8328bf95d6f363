package tailnet

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// udpPortFile, in a node's state directory, holds the UDP port its
// WireGuard socket listens on.
//
// A node restarted on a new port is not reached at once: its peers go on
// sending to the address that last worked until they find the new one.
// On the in-process tailnet, 11 of 24 restarts of a node on a fresh port
// left its peer's next request waiting 5 to 10 s; on the port it had
// before, none waited more than 1 s (docs/doors.md, "Restarts"). tailscaled
// keeps one port (41641) for the same reason; a fixed number would not do
// here, where one process runs several nodes.
const udpPortFile = "udp-port"

// udpPort is the port the node whose state is in dir listened on before,
// or, for a node without one, a port free now, kept for its next start.
// If the port is taken when the node starts, tailscale's socket falls back
// to any free port for that run, and the next start tries the kept one
// again.
func udpPort(dir string) (uint16, error) {
	path := filepath.Join(dir, udpPortFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		p, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 16)
		if perr == nil && p != 0 {
			return uint16(p), nil
		}
		// A damaged file is replaced below: the port is a preference, not
		// state worth refusing to start over.
	case !errors.Is(err, fs.ErrNotExist):
		return 0, fmt.Errorf("reading the node's UDP port: %w", err)
	}
	c, err := net.ListenUDP("udp", nil)
	if err != nil {
		return 0, fmt.Errorf("choosing the node's UDP port: %w", err)
	}
	p := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	if err := os.WriteFile(path, []byte(strconv.Itoa(p)+"\n"), 0o600); err != nil {
		return 0, fmt.Errorf("keeping the node's UDP port: %w", err)
	}
	return uint16(p), nil
}
