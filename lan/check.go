package lan

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"gatehouse/routes"
)

// Check is what `gatehouse check` says about the LAN door beyond the file:
// whether the DNS API token can be read (never what it is), and the
// certificates' state as the running gateway last saved it.
func Check(lc *routes.LANConfig) []string {
	var out []string
	switch b, err := os.ReadFile(lc.DNSTokenFile); {
	case err != nil:
		out = append(out, fmt.Sprintf("lan: the DNS API token file %s (lan.dns_token_file) cannot be read: %v", lc.DNSTokenFile, err))
	case strings.TrimSpace(string(b)) == "":
		out = append(out, fmt.Sprintf("lan: the DNS API token file %s (lan.dns_token_file) is empty", lc.DNSTokenFile))
	}
	st, err := ReadStatus(lc.StateDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		out = append(out, fmt.Sprintf("lan: no certificate status in %s yet: the gateway has not run with this lan block", lc.StateDir))
	case err != nil:
		out = append(out, err.Error())
	default:
		out = append(out, st.Problems(WarnBefore)...)
		if len(st.Problems(WarnBefore)) == 0 && st.Ready {
			out = append(out, fmt.Sprintf("lan: ok — certificates for %s valid until %s (as of %s)",
				strings.Join(st.Names, ", "), st.Expires.UTC().Format(time.RFC3339), st.Updated.UTC().Format(time.RFC3339)))
		}
	}
	return out
}
