package tpm2

import (
	"crypto/sha256"
	"debug/pe"
	"fmt"
	"io"
)

// UKISections are the PE sections systemd-stub 252 measures into PCR 11,
// in its fixed order (src/fundamental/tpm-pcr.c unified_sections, minus
// .pcrsig, which holds the signatures of this very value and so is never
// measured).
var UKISections = []string{".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb", ".pcrpkey"}

// maxSectionSize bounds how much a section may claim (VirtualSize), so a
// hostile header cannot make us hash gigabytes of zeros.
const maxSectionSize = 1 << 30

// UKIMeasurement is one event systemd-stub extends into PCR 11.
type UKIMeasurement struct {
	Section string // the section it belongs to
	What    string // "name" or "data"
	Digest  []byte // SHA-256 of the measured bytes
}

// MeasureUKI lists the events systemd-stub 252 extends into PCR 11 for a
// UKI, in order. For each section of UKISections present with a non-zero
// size:
//
//  1. the section name including its terminating NUL (".linux\x00");
//  2. the section contents as loaded in memory: VirtualSize bytes from
//     VirtualAddress, i.e. the raw data, cut or zero-padded to VirtualSize.
func MeasureUKI(uki io.ReaderAt) ([]UKIMeasurement, error) {
	f, err := pe.NewFile(uki)
	if err != nil {
		return nil, fmt.Errorf("measure UKI: %w", err)
	}
	defer f.Close()
	var ms []UKIMeasurement
	for _, name := range UKISections {
		s := f.Section(name)
		if s == nil || s.VirtualSize == 0 {
			continue
		}
		d, err := sectionDigest(s)
		if err != nil {
			return nil, fmt.Errorf("measure UKI: section %s: %w", name, err)
		}
		ms = append(ms,
			UKIMeasurement{Section: name, What: "name", Digest: sha256Sum(append([]byte(name), 0))},
			UKIMeasurement{Section: name, What: "data", Digest: d})
	}
	return ms, nil
}

func sectionDigest(s *pe.Section) ([]byte, error) {
	if s.VirtualSize > maxSectionSize {
		return nil, fmt.Errorf("VirtualSize %d exceeds %d", s.VirtualSize, maxSectionSize)
	}
	h := sha256.New()
	raw := min(s.VirtualSize, s.Size)
	if _, err := io.Copy(h, io.NewSectionReader(s.ReaderAt, 0, int64(raw))); err != nil {
		return nil, fmt.Errorf("read %d bytes: %w", raw, err)
	}
	zeros := make([]byte, 4096)
	for pad := int64(s.VirtualSize - raw); pad > 0; pad -= int64(len(zeros)) {
		h.Write(zeros[:min(pad, int64(len(zeros)))])
	}
	return h.Sum(nil), nil
}

// PredictPCR11 returns the SHA-256 PCR 11 value after systemd-stub 252
// booted uki, starting from the reset value (all zeros): PCR_new =
// SHA-256(PCR_old || digest) for each MeasureUKI event in order. Optional
// phases are then extended as systemd-pcrphase does (SHA-256 of each
// word, e.g. "enter-initrd"); InitOS's initrd measures "enter-initrd"
// first, so the value it unseals against is PredictPCR11(uki,
// "enter-initrd").
func PredictPCR11(uki io.ReaderAt, phases ...string) ([]byte, error) {
	ms, err := MeasureUKI(uki)
	if err != nil {
		return nil, err
	}
	pcr := make([]byte, sha256.Size)
	for _, m := range ms {
		pcr = sha256Sum(append(pcr, m.Digest...))
	}
	for _, p := range phases {
		pcr = sha256Sum(append(pcr, sha256Sum([]byte(p))...))
	}
	return pcr, nil
}
