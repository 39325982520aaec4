package pecoff

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// UKI holds the payloads of a Unified Kernel Image. Empty fields get no
// section. Linux is required.
type UKI struct {
	OSRelease []byte // .osrel: os-release(5) text
	Cmdline   []byte // .cmdline: kernel command line
	DTB       []byte // .dtb: devicetree blob
	Uname     []byte // .uname: kernel release (uname -r)
	Splash    []byte // .splash: BMP image
	PCRPKey   []byte // .pcrpkey: PEM public key for PCR 11 policies
	Initrd    []byte // .initrd
	SBAT      []byte // extra SBAT CSV merged into .sbat (first line "sbat,..." is dropped)
	PCRSig    []byte // .pcrsig: systemd-measure JSON, taken as is
	Linux     []byte // .linux: the kernel's EFI image
}

// sbatHeader is the first line every merged .sbat carries.
const sbatHeader = "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n"

// BuildUKI strips a trailing COFF symbol table from a copy of stub (a
// systemd-stub) and adds u's payloads in ukify's
// order: .osrel .cmdline .dtb .uname .splash .pcrpkey .initrd, then .sbat
// (the stub's, the kernel's and u.SBAT merged, written over the stub's
// .sbat), then .pcrsig and last .linux. The output only depends on its
// inputs: no timestamp is written.
func BuildUKI(stub []byte, u UKI) (*Image, error) {
	if len(u.Linux) == 0 {
		return nil, fmt.Errorf("build UKI: no kernel (.linux) given")
	}
	img, err := Parse(stub)
	if err != nil {
		return nil, fmt.Errorf("build UKI: stub: %w", err)
	}
	if off, size := img.CertTable(); off != 0 || size != 0 {
		return nil, fmt.Errorf("build UKI: stub: %w", ErrSigned)
	}
	if _, err := img.StripSymbolTable(); err != nil {
		return nil, fmt.Errorf("build UKI: stub: %w", err)
	}
	secs := u.sections(img)
	room := len(img.data) + 64<<10 // alignment padding and signatures
	for _, s := range secs {
		room += len(s.data) + int(img.FileAlignment())
	}
	img.data = slices.Grow(img.data, room-len(img.data))
	for _, s := range secs {
		if err := img.addOrReplace(s.name, s.data); err != nil {
			return nil, fmt.Errorf("build UKI: %w", err)
		}
	}
	return img, nil
}

type ukiSection struct {
	name string
	data []byte
}

func (u UKI) sections(stub *Image) []ukiSection {
	all := []ukiSection{
		{".osrel", u.OSRelease}, {".cmdline", u.Cmdline}, {".dtb", u.DTB},
		{".uname", u.Uname}, {".splash", u.Splash}, {".pcrpkey", u.PCRPKey},
		{".initrd", u.Initrd},
		{".sbat", MergeSBAT(stub.Section(".sbat"), kernelSBAT(u.Linux), u.SBAT)},
		{".pcrsig", u.PCRSig}, {".linux", u.Linux},
	}
	var out []ukiSection
	for _, s := range all {
		if len(s.data) > 0 {
			out = append(out, s)
		}
	}
	return out
}

func (img *Image) addOrReplace(name string, data []byte) error {
	if img.sectionIndex(name) >= 0 {
		return img.ReplaceSection(name, data)
	}
	flags := uint32(SectionMemRead | SectionInitializedData)
	if name == ".linux" {
		// Kernels using the EFI handover protocol run in place (ukify).
		flags = SectionMemRead | SectionCode
	}
	return img.AddSection(name, data, flags)
}

func kernelSBAT(linux []byte) []byte {
	k, err := Parse(linux)
	if err != nil {
		return nil // not a PE kernel: nothing to merge
	}
	return k.Section(".sbat")
}

// MergeSBAT merges SBAT CSV documents: each must start with an "sbat,"
// line, which is dropped (sources without one are skipped); the remaining
// lines are joined under a single canonical "sbat,1,..." line and the result
// ends with a newline and a NUL, as ukify writes it.
func MergeSBAT(sources ...[]byte) []byte {
	var b strings.Builder
	b.WriteString(sbatHeader)
	var lines []string
	for _, src := range sources {
		text := string(bytes.TrimRight(src, "\x00"))
		if !strings.HasPrefix(text, "sbat,") {
			continue
		}
		split := strings.Split(strings.TrimRight(text, "\n"), "\n")
		lines = append(lines, split[1:]...)
	}
	b.WriteString(strings.Join(lines, "\n"))
	b.WriteString("\n\x00")
	return []byte(b.String())
}
