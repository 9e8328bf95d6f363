package lan

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Status is the state of the LAN door's certificates, for the log,
// metrics and `gatehouse check`.
type Status struct {
	Names []string `json:"names"`
	// Ready: every name has a certificate that is valid now.
	Ready bool `json:"ready"`
	// Expires is the earliest expiry among the certificates served; zero
	// while there is none.
	Expires time.Time `json:"expires,omitzero"`
	// Error is the last failure to obtain or renew, "" after a success.
	Error    string    `json:"error,omitempty"`
	ErrorAt  time.Time `json:"error_at,omitzero"`
	Failures uint64    `json:"failures"`
	// RenewalFailing: Error is a failed renewal of a certificate that was
	// still valid then (it is served until it expires).
	RenewalFailing bool `json:"renewal_failing,omitempty"`
	// Missing are the names without a valid certificate.
	Missing []string `json:"missing,omitempty"`
	// Updated is when the status was taken.
	Updated time.Time `json:"updated"`
}

// Status reports the certificates' state now.
func (m *Manager) Status() Status {
	m.mu.Lock()
	st := Status{Names: append([]string(nil), m.names...), Failures: m.failures, ErrorAt: m.lastErrAt}
	if m.lastErr != nil {
		st.Error = describe(m.lastErr)
		st.RenewalFailing = m.renewFailed
	}
	m.mu.Unlock()
	now := time.Now()
	st.Updated = now
	st.Ready = true
	for _, n := range st.Names {
		valid := false
		for _, c := range m.cache.AllMatchingCertificates(n) {
			if c.Leaf == nil || now.Before(c.Leaf.NotBefore) || !now.Before(c.Leaf.NotAfter) {
				continue
			}
			valid = true
			if st.Expires.IsZero() || c.Leaf.NotAfter.Before(st.Expires) {
				st.Expires = c.Leaf.NotAfter
			}
		}
		if !valid {
			st.Ready = false
			st.Missing = append(st.Missing, n)
		}
	}
	return st
}

// Problems are the lines `gatehouse check` and the log print for a status
// that needs attention; none when all is well. warnBefore: how close to
// expiry a certificate whose renewal fails is a warning.
func (st Status) Problems(warnBefore time.Duration) []string {
	var out []string
	if len(st.Missing) > 0 {
		msg := fmt.Sprintf("lan: no valid certificate for %v: the LAN door refuses TLS for those names", st.Missing)
		if st.Error != "" {
			msg += "; last attempt (" + st.ErrorAt.UTC().Format(time.RFC3339) + "): " + st.Error
		} else {
			msg += "; the first attempt is under way"
		}
		out = append(out, msg)
	}
	if st.RenewalFailing && len(st.Missing) == 0 && !st.Expires.IsZero() && time.Until(st.Expires) < warnBefore {
		out = append(out, fmt.Sprintf("lan: the certificate expires on %s and cannot be renewed: %s",
			st.Expires.UTC().Format(time.RFC3339), st.Error))
	}
	return out
}

// statusFile is where a running gateway keeps its LAN status for
// `gatehouse check`, which runs as a process of its own.
func statusFile(stateDir string) string { return filepath.Join(stateDir, "status.json") }

// WriteStatus saves st in the state directory (atomically: a reader sees
// the old or the new file, never half of one).
func WriteStatus(stateDir string, st Status) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fmt.Errorf("lan status: %w", err)
	}
	tmp := statusFile(stateDir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("lan status: %w", err)
	}
	if err := os.Rename(tmp, statusFile(stateDir)); err != nil {
		return fmt.Errorf("lan status: %w", err)
	}
	return nil
}

// ReadStatus reads the status a running gateway last saved.
func ReadStatus(stateDir string) (Status, error) {
	var st Status
	b, err := os.ReadFile(statusFile(stateDir))
	if err != nil {
		return st, fmt.Errorf("lan status: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("lan status %s: %w", statusFile(stateDir), err)
	}
	return st, nil
}
