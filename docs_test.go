package main

// The README and docs/ are what a newcomer follows: these tests keep the
// README's first commands equal to what CI runs and every link between the
// pages pointing at a file and a heading that exist.

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// The README starts with the two commands a newcomer needs: gatehouse on
// the shipped table, and the tests exactly as .ci/run runs them.
func TestReadmeStartsWithTheCommands(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := os.ReadFile(".ci/run")
	if err != nil {
		t.Fatal(err)
	}
	var ciTest string
	for _, l := range strings.Split(string(ci), "\n") {
		if strings.HasPrefix(l, "go ") && strings.Contains(l, " ./...") && strings.Contains(l, "-race") {
			ciTest = l
		}
	}
	if ciTest == "" {
		t.Fatal(".ci/run has no test command")
	}
	lines := strings.Split(string(readme), "\n")
	if lines[0] != "# gatehouse" || lines[1] != "" || lines[2] != "```sh" || lines[5] != "```" {
		t.Fatalf("README.md does not start with its title and one block of commands:\n%s", strings.Join(lines[:min(8, len(lines))], "\n"))
	}
	command := func(l string) string { c, _, _ := strings.Cut(l, "#"); return strings.TrimSpace(c) }
	if got := command(lines[3]); got != "go run . -config routes.hcl" {
		t.Errorf("the first command is %q", got)
	}
	if got := command(lines[4]); got != ciTest {
		t.Errorf("the README's test command %q is not .ci/run's %q", got, ciTest)
	}
	if n := len(lines); n > 220 {
		t.Errorf("README.md has %d lines; the reference belongs in docs/", n)
	}
}

var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// anchors are the GitHub anchors of a Markdown file's headings.
func anchors(t *testing.T, file string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	fence := false
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "```") {
			fence = !fence
		}
		if fence || !strings.HasPrefix(l, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(l, "#"))
		var slug strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case unicode.IsLetter(r) || unicode.IsNumber(r) || r == '_' || r == '-':
				slug.WriteRune(r)
			case r == ' ':
				slug.WriteRune('-')
			}
		}
		s := slug.String()
		for i := 1; out[s]; i++ {
			s = slug.String() + "-" + string(rune('0'+i))
		}
		out[s] = true
	}
	return out
}

// Every relative link in README.md and docs/ names a file that exists and,
// with a #fragment, a heading in it.
func TestDocsLinksResolve(t *testing.T) {
	files, _ := filepath.Glob("docs/*.md")
	files = append(files, "README.md")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			dest := f
			if path != "" {
				dest = filepath.Join(filepath.Dir(f), path)
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s links to %s, which does not exist", f, target)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(dest, ".md") && !anchors(t, dest)[frag] {
				t.Errorf("%s links to %s, but %s has no heading #%s", f, target, dest, frag)
			}
		}
	}
}
