package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"gatehouse/lan"
	"gatehouse/routes"
)

// The certificate gatebench stores for the LAN door is the one the door's
// certificate manager serves, found where it looks, without a single
// attempt to reach the CA (which is a refused port).
func TestSeededCertificateIsServedByTheLANDoor(t *testing.T) {
	dir := t.TempDir()
	cert, err := makeBenchCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "lan")
	if err := cert.seedLAN(state); err != nil {
		t.Fatal(err)
	}
	cfg := &routes.LANConfig{StateDir: state, ACMECA: lanCA, DNSTokenFile: filepath.Join(dir, "token"), Wildcard: true}
	mgr := lan.NewManager(lan.ManagerOptions{Config: cfg, Names: []string{"*." + benchDomain},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer mgr.Stop()
	if err := mgr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second) // hang guard
	for !mgr.Status().Ready {
		if time.Now().After(deadline) {
			t.Fatalf("the stored certificate was never loaded: %+v", mgr.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	got, err := mgr.TLSConfig().GetCertificate(&tls.ClientHelloInfo{ServerName: tlsHost})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Certificate) == 0 || !bytes.Equal(got.Certificate[0], cert.leaf) {
		t.Fatal("the LAN door serves another certificate than the bench's")
	}
	if st := mgr.Status(); st.Failures != 0 || st.Error != "" {
		t.Errorf("the manager tried to reach the CA: %d failures, %q", st.Failures, st.Error)
	}
}
