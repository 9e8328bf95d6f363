package routes

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Warnings are kinds of diagnostics that do not stop a file from loading.
// Each has a name, which routes.hcl's top-level `acknowledge` list takes
// to silence it once the admin has read it and means it (the shipped
// table's family routes before an oidc block exists, say).
var Warnings = []struct{ Code, What string }{
	{WarnFamilyWithoutSignIn, "family routes while there is no oidc block (they answer 503 until one is added)"},
	{WarnIdentityHeadersWithoutFamily, "identity headers on a cloudflare or lan door without family access"},
	{WarnRouteWithoutDoor, "a route with neither a tailnet, a cloudflare nor a lan block"},
	{WarnKeycloakMasterRealm, "a Keycloak route that opens its master realm on the cloudflare door"},
	{WarnTailnetRoutesWithoutTailnet, "routes with a tailnet block while there is no top-level tailnet block"},
	{WarnLANRoutesWithoutLAN, "routes with a lan block while there is no top-level lan block"},
	{WarnLANMaxBodyBelowRoute, "a lan max_body smaller than the route's own"},
}

// The names of the warnings.
const (
	WarnFamilyWithoutSignIn          = "family-without-sign-in"
	WarnIdentityHeadersWithoutFamily = "identity-headers-without-family"
	WarnRouteWithoutDoor             = "route-without-door"
	WarnKeycloakMasterRealm          = "keycloak-master-realm"
	WarnTailnetRoutesWithoutTailnet  = "tailnet-routes-without-tailnet"
	WarnLANRoutesWithoutLAN          = "lan-routes-without-lan"
	WarnLANMaxBodyBelowRoute         = "lan-max-body-below-route"
)

// warningCode marks a warning diagnostic with its name (hcl.Diagnostic.Extra).
type warningCode string

// WarningCode is the name of a warning diagnostic, "" for anything else.
func WarningCode(d *hcl.Diagnostic) string {
	c, _ := d.Extra.(warningCode)
	return string(c)
}

func (d *decoder) warnf(code string, rng hcl.Range, summary, format string, args ...any) {
	r := rng
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning, Summary: summary, Subject: &r, Extra: warningCode(code),
		Detail: fmt.Sprintf(format, args...) + fmt.Sprintf(` If that is what you mean, acknowledge = ["%s"] at the top of the file silences this warning.`, code),
	})
}

func warningCodes() string {
	codes := make([]string, len(Warnings))
	for i, w := range Warnings {
		codes[i] = fmt.Sprintf("%q", w.Code)
	}
	return strings.Join(codes, ", ")
}

// acknowledged reads the top-level acknowledge list.
func (d *decoder) acknowledged(attrs hcl.Attributes) []string {
	list, rng, ok := d.strList(attrs, "acknowledge")
	if !ok {
		return nil
	}
	for _, c := range list {
		if !slices.ContainsFunc(Warnings, func(w struct{ Code, What string }) bool { return w.Code == c }) {
			d.errorf(rng, "Unknown warning", "%q in acknowledge is not the name of a warning; the names are %s.", c, warningCodes())
		}
	}
	return list
}

// dropAcknowledged removes the warnings the file acknowledges and counts them.
func (d *decoder) dropAcknowledged(codes []string) (dropped int) {
	if len(codes) == 0 {
		return 0
	}
	kept := d.diags[:0]
	for _, dg := range d.diags {
		if dg.Severity == hcl.DiagWarning && slices.Contains(codes, WarningCode(dg)) {
			dropped++
			continue
		}
		kept = append(kept, dg)
	}
	d.diags = kept
	return dropped
}
