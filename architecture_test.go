package main

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const architectureDoc = "docs/ARCHITECTURE.md"

// repoTextFiles returns the repository's source and documentation files
// with their contents.
func repoTextFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != "." && strings.HasPrefix(name, ".") && name != ".ci" {
				return filepath.SkipDir
			}
			return nil
		}
		switch ext := filepath.Ext(name); {
		case ext == ".go", ext == ".md", ext == ".nix", ext == ".hcl", ext == ".sh", filepath.Dir(path) == ".ci":
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files[path] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// Invariant 11, docs/ARCHITECTURE.md: the invariants live in the
// repository, every comment citing one resolves, nothing cites a design
// document or an issue from outside the repository, and every test the
// architecture document names as a proof exists.
func TestArchitectureDocResolves(t *testing.T) {
	b, err := os.ReadFile(architectureDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "\n## Invariants\n")
	if start < 0 {
		t.Fatalf("%s has no Invariants section", architectureDoc)
	}
	section := doc[start+1:]
	if end := strings.Index(section[1:], "\n## "); end >= 0 {
		section = section[:end+1]
	}
	listed := map[int]bool{}
	for _, m := range regexp.MustCompile(`(?m)^(\d+)\. \*\*`).FindAllStringSubmatch(section, -1) {
		n, _ := strconv.Atoi(m[1])
		listed[n] = true
	}
	for n := 1; n <= 11; n++ {
		if !listed[n] {
			t.Errorf("%s does not list invariant %d", architectureDoc, n)
		}
	}

	files := repoTextFiles(t)
	cite := regexp.MustCompile(`(?i)\binvariants? (\d+)`)
	outside := regexp.MustCompile(`(?i)\bDESIGN\.md\b|\bissue #?\d+`)
	defined := map[string]bool{}
	testFunc := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz)\w+)\(`)
	for path, text := range files {
		for _, m := range cite.FindAllStringSubmatch(text, -1) {
			if n, _ := strconv.Atoi(m[1]); !listed[n] {
				t.Errorf("%s cites %q, which %s does not list", path, m[0], architectureDoc)
			}
		}
		if path != "architecture_test.go" {
			for _, m := range outside.FindAllString(text, -1) {
				t.Errorf("%s cites %q, which is not in the repository", path, m)
			}
		}
		if strings.HasSuffix(path, "_test.go") {
			for _, m := range testFunc.FindAllStringSubmatch(text, -1) {
				defined[m[1]] = true
			}
		}
	}
	for _, name := range regexp.MustCompile("`((?:Test|Fuzz)[A-Z][A-Za-z0-9_]*)`").FindAllStringSubmatch(doc, -1) {
		if !defined[name[1]] {
			t.Errorf("%s names %s, which no test file defines", architectureDoc, name[1])
		}
	}
}

// The package rules of docs/ARCHITECTURE.md ("Packages and what each may
// import"): policy packages stay free of Tailscale, proxy and signin do not
// import each other or tailnet, leaf packages stay leaves.
func TestPackageGraph(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command, which runs this test: %v", err)
	}
	list := func(args ...string) []string {
		t.Helper()
		out, err := exec.Command(goBin, append([]string{"list"}, args...)...).Output()
		if err != nil {
			t.Fatalf("go list %v: %v", args, err)
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	mayImport := map[string][]string{
		"gatehouse/routes":              nil,
		"gatehouse/auth":                {"gatehouse/routes"},
		"gatehouse/proxy":               {"gatehouse/auth", "gatehouse/forward", "gatehouse/metrics", "gatehouse/page", "gatehouse/ratelimit", "gatehouse/routes"},
		"gatehouse/forward":             nil,
		"gatehouse/page":                nil,
		"gatehouse/signin":              {"gatehouse/auth", "gatehouse/devices", "gatehouse/page", "gatehouse/ratelimit", "gatehouse/routes"},
		"gatehouse/lan":                 {"gatehouse/routes"},
		"gatehouse/server":              {"gatehouse/accesslog", "gatehouse/dashboard", "gatehouse/health", "gatehouse/lan", "gatehouse/metrics", "gatehouse/proxy", "gatehouse/ratelimit", "gatehouse/routes", "gatehouse/sdnotify", "gatehouse/signin", "gatehouse/tailnet"},
		"gatehouse/tailnet":             {"gatehouse/auth", "gatehouse/routes"},
		"gatehouse/tailnet/tailnettest": nil,
		"gatehouse/ratelimit":           nil,
		"gatehouse/metrics":             nil,
		"gatehouse/devices":             nil,
		"gatehouse/sdnotify":            nil,
		"gatehouse/health":              {"gatehouse/metrics", "gatehouse/routes"},
		"gatehouse/dashboard": {"gatehouse/auth", "gatehouse/devices", "gatehouse/health", "gatehouse/metrics",
			"gatehouse/proxy", "gatehouse/ratelimit", "gatehouse/routes", "gatehouse/signin"},
		"gatehouse/accesslog": {"gatehouse/proxy"},
	}
	seen := 0
	for _, line := range list("-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...") {
		f := strings.Fields(line)
		allowed, ok := mayImport[f[0]]
		if !ok {
			continue
		}
		seen++
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, "gatehouse/") && !slices.Contains(allowed, imp) {
				t.Errorf("%s imports %s; docs/ARCHITECTURE.md allows it %v", f[0], imp, allowed)
			}
		}
	}
	if seen != len(mayImport) {
		t.Errorf("go list named %d of the %d packages the rules cover", seen, len(mayImport))
	}
	noTailscale := []string{"./routes", "./auth", "./proxy", "./forward", "./page", "./signin", "./ratelimit", "./metrics", "./devices", "./sdnotify", "./health", "./dashboard", "./accesslog"}
	for _, dep := range list(append([]string{"-deps"}, noTailscale...)...) {
		if strings.HasPrefix(dep, "tailscale.com") {
			t.Errorf("%v depend on %s: only tailnet/ may use Tailscale", noTailscale, dep)
		}
	}
}
