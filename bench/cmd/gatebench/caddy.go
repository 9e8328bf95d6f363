package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Caddy is compared in its current release, built from the Go module
// proxy: a distribution's package is often years behind (Debian's 2.6.2),
// and Caddy's speed has changed since.
const (
	caddyModule  = "github.com/caddyserver/caddy/v2/cmd/caddy"
	caddyRelease = "v2.11.9"
)

// findCaddy picks the Caddy binary: -caddy if given; else caddyRelease,
// built once with `go install` into the user's cache directory and reused
// from there; else, if that build fails, the caddy in PATH, with the
// reason noted. It returns the binary and how it was found.
func findCaddy(given string) (bin, how string, err error) {
	if given != "" {
		if _, err := exec.LookPath(given); err != nil {
			return "", "", fmt.Errorf("-caddy %s: %w", given, err)
		}
		return given, "given with -caddy", nil
	}
	why := ""
	cache, err := os.UserCacheDir()
	if _, lerr := exec.LookPath("go"); err == nil && lerr != nil {
		err = lerr
	}
	if err == nil {
		dir := filepath.Join(cache, "gatebench", "caddy-"+caddyRelease)
		bin := filepath.Join(dir, "caddy")
		if caddyVersion(bin) == caddyRelease {
			return bin, "built from the Go module proxy, cached in " + dir, nil
		}
		logf("building Caddy %s from the Go module proxy into %s (once; later runs reuse it)", caddyRelease, dir)
		cmd := exec.Command("go", "install", caddyModule+"@"+caddyRelease)
		// Outside the repository, so its go.mod has no say in the build.
		cmd.Dir = cache
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
		out, err := cmd.CombinedOutput()
		if err == nil && caddyVersion(bin) == caddyRelease {
			return bin, "built from the Go module proxy, cached in " + dir, nil
		}
		why = fmt.Sprintf("go install %s@%s failed: %v %s", caddyModule, caddyRelease, err, lastLines(string(out), 3))
	} else {
		why = "Caddy " + caddyRelease + " could not be built: " + err.Error()
	}
	p, err := exec.LookPath("caddy")
	if err != nil {
		return "", "", fmt.Errorf("%s, and no caddy in PATH (apt-get install -y caddy, or -caddy BIN)", why)
	}
	return p, "from PATH, a fallback: " + why, nil
}

// caddyVersion is the version of a Caddy binary: what `caddy version`
// says, or, where that is "unknown" (a binary from `go install`, whose
// main module is Caddy itself), the Caddy module's version in
// `caddy build-info`. "" if neither says.
func caddyVersion(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return ""
	}
	if f := strings.Fields(string(out)); len(f) > 0 && f[0] != "unknown" {
		return f[0]
	}
	out, _ = exec.Command(bin, "build-info").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && (f[0] == "mod" || f[0] == "dep") && f[1] == "github.com/caddyserver/caddy/v2" {
			return f[2]
		}
	}
	return ""
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " ")
}
