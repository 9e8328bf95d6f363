package routes

import (
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// FormatDiagnostic renders one diagnostic as "file:line:col: severity:
// summary: detail", the form editors and terminals link to.
func FormatDiagnostic(d *hcl.Diagnostic) string {
	sev := "error"
	if d.Severity == hcl.DiagWarning {
		sev = "warning"
	}
	pos := ""
	if d.Subject != nil {
		pos = fmt.Sprintf("%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
	}
	msg := d.Summary
	if d.Detail != "" {
		msg += ": " + d.Detail
	}
	return pos + sev + ": " + msg
}

// WriteDiagnostics prints every diagnostic with the offending source line
// and a caret under the spot, errors first.
func WriteDiagnostics(w io.Writer, diags hcl.Diagnostics, f *hcl.File) {
	for _, sev := range []hcl.DiagnosticSeverity{hcl.DiagError, hcl.DiagWarning} {
		for _, d := range diags {
			if d.Severity != sev {
				continue
			}
			fmt.Fprintln(w, FormatDiagnostic(d))
			if f == nil || d.Subject == nil {
				continue
			}
			lines := strings.Split(string(f.Bytes), "\n")
			ln := d.Subject.Start.Line
			if ln < 1 || ln > len(lines) {
				continue
			}
			src := strings.ReplaceAll(lines[ln-1], "\t", " ")
			width := 1
			if d.Subject.End.Line == ln && d.Subject.End.Column > d.Subject.Start.Column {
				width = d.Subject.End.Column - d.Subject.Start.Column
			}
			fmt.Fprintf(w, "    %s\n    %s%s\n", src, strings.Repeat(" ", max(d.Subject.Start.Column-1, 0)), strings.Repeat("^", width))
		}
	}
}
