package control

import (
	"fmt"
	"io"
	"strings"
)

// writeStatus prints st as text, one fact a line.
func writeStatus(w io.Writer, st Status) error {
	var b strings.Builder
	fmt.Fprintf(&b, "stage: %s\nmode: %s\n", st.Stage, st.Mode)
	for _, kv := range [][2]string{{"slot", st.Slot}, {"build", st.BuildID}, {"kernel", st.Kernel}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "%s: %s\n", kv[0], kv[1])
		}
	}
	if st.Version != 0 {
		fmt.Fprintf(&b, "version: %d\n", st.Version)
	}
	if f := st.Failure; f != nil {
		fmt.Fprintf(&b, "failure: %s: %s\n", f.Step, f.Message)
		for _, p := range f.PCRs {
			fmt.Fprintf(&b, "  PCR %d (%s): expected %s, actual %s\n", p.Index, p.Bank, p.Expected, p.Actual)
		}
	}
	for _, d := range st.Disks {
		fmt.Fprintf(&b, "disk: %s %s %s\n", d.Name, formatSize(d.Size), strings.TrimSpace(d.Model+" "+d.Serial))
	}
	for _, v := range st.Volumes {
		fmt.Fprintf(&b, "volume: %s %s %s", v.Device, v.UUID, v.State)
		if v.Token != "" {
			fmt.Fprintf(&b, " token=%s", v.Token)
		}
		if v.Reason != "" {
			fmt.Fprintf(&b, ": %s", v.Reason)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "wrong unlock keys: %d\n", st.WrongKeys)
	_, err := io.WriteString(w, b.String())
	return err
}

// writePCRs prints the PCR table and the event log as text.
func writePCRs(w io.Writer, rep PCRReport) error {
	var b strings.Builder
	for _, p := range rep.PCRs {
		fmt.Fprintf(&b, "%s:%-2d %s", rep.Bank, p.Index, p.Value)
		switch {
		case p.Expected == "":
		case strings.EqualFold(p.Expected, p.Value):
			b.WriteString("  policy: match")
		default:
			fmt.Fprintf(&b, "  policy: MISMATCH, expected %s", p.Expected)
		}
		b.WriteByte('\n')
	}
	if len(rep.EventLog) > 0 {
		b.WriteString("event log:\n")
	}
	for _, e := range rep.EventLog {
		fmt.Fprintf(&b, "  PCR %-2d %-32s %s %s\n", e.PCR, e.Type, e.Digest, e.Data)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// formatSize prints a byte count with a binary unit.
func formatSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
