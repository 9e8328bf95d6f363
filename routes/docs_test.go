package routes

import (
	"os"
	"strings"
	"testing"
)

// The route table docs/signin.md gives for trying family sign-in on one
// machine is one `gatehouse check` accepts, with every family host under
// its cookie domain and an https issuer on one of its own hosts.
func TestLocalSignInExampleChecks(t *testing.T) {
	doc, err := os.ReadFile("../docs/signin.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## Trying it on one machine")
	if !ok {
		t.Fatal("docs/signin.md has no \"Trying it on one machine\" section")
	}
	_, block, ok := strings.Cut(section, "```hcl\n")
	if ok {
		block, _, ok = strings.Cut(block, "```")
	}
	if !ok {
		t.Fatal("the section has no hcl route table")
	}
	var src strings.Builder
	for _, line := range strings.Split(block, "\n") {
		src.WriteString(strings.TrimPrefix(line, "   ") + "\n")
	}
	cfg, _, diags := Parse([]byte(src.String()), "signin.md")
	if diags.HasErrors() {
		t.Fatalf("the documented table does not check: %s\n%s", diags.Error(), src.String())
	}
	for _, w := range cfg.Warnings {
		t.Errorf("warning on the documented table: %v", w)
	}
	o := cfg.OIDC
	if o == nil || o.Issuer != "https://auth.home.test/realms/home" || o.CookieDomain != "home.test" {
		t.Fatalf("oidc block: %+v", o)
	}
	family := 0
	for _, r := range cfg.Routes {
		if dr := r.Doors[Cloudflare]; dr != nil && r.UsesAccess(Cloudflare, Family) {
			family++
			if !strings.HasSuffix(dr.Host, ".home.test") {
				t.Errorf("family host %s is not under the cookie domain", dr.Host)
			}
		}
	}
	if family == 0 {
		t.Error("the documented table has no family route")
	}
}
