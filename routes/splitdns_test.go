package routes

import (
	"bytes"
	"strings"
	"testing"
)

func TestWriteSplitDNS(t *testing.T) {
	cfg := loadShipped(t)
	var b bytes.Buffer
	if err := WriteSplitDNS(&b, cfg); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	// Every LAN host of the shipped file, at the lan.listen address.
	for _, host := range LANHosts(cfg) {
		for _, want := range []string{
			host + " ", "address=/" + host + "/192.168.1.10\n",
			`local-data: "` + host + `. A 192.168.1.10"`, host + " → 192.168.1.10\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("split DNS lacks %q:\n%s", want, out)
			}
		}
	}
	if n := len(LANHosts(cfg)); n != 15 {
		t.Errorf("%d LAN hosts in the shipped file, want 15", n)
	}
	// A wildcard listen address has no IP to name.
	cfg.LAN.Listen = []string{"0.0.0.0:443"}
	b.Reset()
	_ = WriteSplitDNS(&b, cfg)
	if !strings.Contains(b.String(), "address=/photos.example.com/<this machine's LAN address>") {
		t.Errorf("wildcard listen:\n%s", b.String())
	}
}
