package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestBenchBuildsAsShipped keeps the bench's build of gatehouse the one
// nixos/package.nix makes: a figure measured on another build (with cgo,
// or with symbol tables) is not what a deployment runs.
func TestBenchBuildsAsShipped(t *testing.T) {
	b, err := os.ReadFile("../../../nixos/package.nix")
	if err != nil {
		t.Fatal(err)
	}
	pkg := string(b)
	if !strings.Contains(pkg, `env.CGO_ENABLED = "0";`) {
		t.Error(`nixos/package.nix no longer sets env.CGO_ENABLED = "0"; the bench builds with CGO_ENABLED=0 (run.go)`)
	}
	block := regexp.MustCompile(`(?s)ldflags = \[(.*?)\];`).FindStringSubmatch(pkg)
	if block == nil {
		t.Fatal("nixos/package.nix has no ldflags list")
	}
	var shipped []string
	for _, m := range regexp.MustCompile(`"(-[^"$]*)"`).FindAllStringSubmatch(block[1], -1) {
		if !strings.HasPrefix(m[1], "-X") { // the version stamp changes no code
			shipped = append(shipped, m[1])
		}
	}
	want := "-ldflags=" + strings.Join(shipped, " ")
	if !slices.Contains(shippedBuild, want) {
		t.Errorf("nixos/package.nix links with %q, the bench with %q (shippedBuild in run.go)", want, shippedBuild)
	}
}
