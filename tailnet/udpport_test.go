package tailnet

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A node keeps the UDP port it was given first; a damaged record is
// replaced by a fresh port, not an error that would keep the node down.
func TestUDPPortIsKeptAcrossStarts(t *testing.T) {
	dir := t.TempDir()
	first, err := udpPort(dir)
	if err != nil || first == 0 {
		t.Fatalf("first start: port %d, %v", first, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, udpPortFile))
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(int(first)) {
		t.Fatalf("kept %q (%v), want %d", b, err, first)
	}
	for range 3 {
		if again, err := udpPort(dir); err != nil || again != first {
			t.Fatalf("a later start: port %d, %v; want %d", again, err, first)
		}
	}
	for _, damaged := range []string{"", "0", "70000", "not a port"} {
		if err := os.WriteFile(filepath.Join(dir, udpPortFile), []byte(damaged), 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := udpPort(dir)
		if err != nil || p == 0 {
			t.Fatalf("after %q: port %d, %v", damaged, p, err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, udpPortFile)); strings.TrimSpace(string(b)) != strconv.Itoa(int(p)) {
			t.Fatalf("after %q the record holds %q, not the new port %d", damaged, b, p)
		}
	}
}

// A record that cannot be read is an error, which newServer logs and
// answers with any free port.
func TestUDPPortUnreadableRecord(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, udpPortFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if p, err := udpPort(dir); err == nil || p != 0 {
		t.Fatalf("a directory where the record should be: port %d, err %v", p, err)
	}
}
