package pecoff

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
)

const stubPath = "testdata/linuxx64.efi.stub"

func readStub(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(stubPath)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func smallUKI() UKI {
	return UKI{
		OSRelease: []byte("ID=initos\nVERSION_ID=1\n"),
		Cmdline:   []byte("console=ttyS0 quiet"),
		Uname:     []byte("6.1.0-56-amd64"),
		Initrd:    bytes.Repeat([]byte("cpio"), 3000),
		Linux:     bytes.Repeat([]byte{0xcc}, 7000),
	}
}

func TestStructSizes(t *testing.T) {
	var opt pe.OptionalHeader64
	tests := []struct {
		name      string
		got, want int
	}{
		{"SectionHeader32", binary.Size(pe.SectionHeader32{}), sectionHeaderSize},
		{"FileHeader", binary.Size(pe.FileHeader{}), coffHeaderSize},
		{"WinCertificateHeader", binary.Size(WinCertificateHeader{}), 8},
		{"OptionalHeader64", binary.Size(opt), optDataDirectory + 16*dataDirEntrySize},
		{"SizeOfInitializedData", int(unsafe.Offsetof(opt.SizeOfInitializedData)), optSizeOfInitData},
		{"SectionAlignment", int(unsafe.Offsetof(opt.SectionAlignment)), optSectionAlign},
		{"FileAlignment", int(unsafe.Offsetof(opt.FileAlignment)), optFileAlign},
		{"SizeOfImage", int(unsafe.Offsetof(opt.SizeOfImage)), optSizeOfImage},
		{"SizeOfHeaders", int(unsafe.Offsetof(opt.SizeOfHeaders)), optSizeOfHeaders},
		{"CheckSum", int(unsafe.Offsetof(opt.CheckSum)), optCheckSum},
		{"NumberOfRvaAndSizes", int(unsafe.Offsetof(opt.NumberOfRvaAndSizes)), optNumberOfRva},
		{"DataDirectory", int(unsafe.Offsetof(opt.DataDirectory)), optDataDirectory},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}

func TestStubChecksum(t *testing.T) {
	img, err := Parse(readStub(t))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := img.ComputeCheckSum(), img.CheckSum(); got != want {
		t.Errorf("ComputeCheckSum(stub) = %#x, want the linker's %#x", got, want)
	}
}

func TestBuildUKILayout(t *testing.T) {
	stub, err := Parse(readStub(t))
	if err != nil {
		t.Fatal(err)
	}
	img, err := BuildUKI(readStub(t), smallUKI())
	if err != nil {
		t.Fatal(err)
	}
	secs := img.Sections()
	var names []string
	for _, s := range secs[len(stub.Sections()):] {
		names = append(names, s.Name)
	}
	if diff := cmp.Diff([]string{".osrel", ".cmdline", ".uname", ".initrd", ".linux"}, names); diff != "" {
		t.Errorf("added sections (-want +got):\n%s", diff)
	}
	sa, fa := uint64(img.SectionAlignment()), uint64(img.FileAlignment())
	for i := len(stub.Sections()); i < len(secs); i++ {
		prev, s := secs[i-1], secs[i]
		if want := uint32(alignUp(uint64(prev.VirtualAddress)+uint64(prev.VirtualSize), sa)); s.VirtualAddress != want {
			t.Errorf("%s RVA = %#x, want %#x", s.Name, s.VirtualAddress, want)
		}
		if s.Offset%uint32(fa) != 0 || s.Size != uint32(alignUp(uint64(s.VirtualSize), fa)) {
			t.Errorf("%s raw [%#x+%#x] not FileAlignment-aligned", s.Name, s.Offset, s.Size)
		}
		if got := img.Section(s.Name); len(got) != int(s.VirtualSize) {
			t.Errorf("Section(%s) has %d bytes, want %d", s.Name, len(got), s.VirtualSize)
		}
	}
	last := secs[len(secs)-1]
	if want := uint32(alignUp(uint64(last.VirtualAddress)+uint64(last.VirtualSize), sa)); img.SizeOfImage() != want {
		t.Errorf("SizeOfImage = %#x, want %#x", img.SizeOfImage(), want)
	}
	if img.CheckSum() != img.ComputeCheckSum() {
		t.Errorf("CheckSum = %#x, want %#x", img.CheckSum(), img.ComputeCheckSum())
	}
	if _, err := Parse(img.Bytes()); err != nil {
		t.Errorf("Parse(built UKI) = %v", err)
	}
	if got := string(img.Section(".cmdline")); got != "console=ttyS0 quiet" {
		t.Errorf(".cmdline = %q", got)
	}
}

func TestBuildUKIInitializedData(t *testing.T) {
	stub, _ := Parse(readStub(t))
	u := smallUKI()
	img, err := BuildUKI(readStub(t), u)
	if err != nil {
		t.Fatal(err)
	}
	added := len(u.OSRelease) + len(u.Cmdline) + len(u.Uname) + len(u.Initrd) + len(u.Linux)
	got := img.u32(optSizeOfInitData) - stub.u32(optSizeOfInitData)
	if int(got) != added {
		t.Errorf("SizeOfInitializedData grew by %d, want %d", got, added)
	}
}

func TestBuildUKIReproducible(t *testing.T) {
	a, err := BuildUKI(readStub(t), smallUKI())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := BuildUKI(readStub(t), smallUKI())
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two builds from the same inputs differ")
	}
}

func TestBuildUKINoRoom(t *testing.T) {
	u := smallUKI()
	u.DTB, u.Splash, u.PCRPKey, u.PCRSig = []byte("dtb"), []byte("BM"), []byte("key"), []byte("{}")
	_, err := BuildUKI(readStub(t), u)
	if !errors.Is(err, ErrNoRoom) {
		t.Errorf("BuildUKI(9 sections on an 8-section stub) = %v, want %v", err, ErrNoRoom)
	}
}

func TestBuildUKISBAT(t *testing.T) {
	u := smallUKI()
	u.SBAT = []byte("sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\ninitos,1,I,i,1,u\n")
	img, err := BuildUKI(readStub(t), u)
	if err != nil {
		t.Fatal(err)
	}
	got := string(img.Section(".sbat"))
	for _, want := range []string{sbatHeader, "\nsystemd,1,", "\ninitos,1,I,i,1,u", "\n\x00"} {
		if !strings.Contains(got, want) {
			t.Errorf(".sbat = %q, want it to contain %q", got, want)
		}
	}
	if strings.Contains(got, "\nsbat,") {
		t.Errorf(".sbat has more than one sbat line: %q", got)
	}
}

func TestBuildUKISBATTooLarge(t *testing.T) {
	u := smallUKI()
	u.SBAT = []byte("sbat,1\n" + strings.Repeat("initos,1,InitOS,initos,1,https://example.org\n", 2))
	if _, err := BuildUKI(readStub(t), u); !errors.Is(err, ErrNoRoom) {
		t.Errorf("BuildUKI(.sbat past the next section) = %v, want %v", err, ErrNoRoom)
	}
}

func TestMergeSBAT(t *testing.T) {
	got := string(MergeSBAT([]byte("sbat,1,x\na,1\n\x00"), []byte("not sbat"), []byte("sbat,1,y\nb,2")))
	if want := sbatHeader + "a,1\nb,2\n\x00"; got != want {
		t.Errorf("MergeSBAT() = %q, want %q", got, want)
	}
}

func TestAddSectionErrors(t *testing.T) {
	tests := []struct{ name, section string }{
		{"long name", ".toolongname"},
		{"empty name", ""},
		{"space", ". x"},
	}
	for _, tt := range tests {
		img, _ := Parse(readStub(t))
		if err := img.AddSection(tt.section, []byte("x"), SectionMemRead); err == nil {
			t.Errorf("%s: AddSection(%q) = nil, want an error", tt.name, tt.section)
		}
	}
	img, _ := Parse(readStub(t))
	if err := img.ReplaceSection(".sbat", make([]byte, 0x300)); !errors.Is(err, ErrNoRoom) {
		t.Errorf("ReplaceSection(.sbat, 0x300 bytes) = %v, want %v", err, ErrNoRoom)
	}
}

func TestBuildUKISignedStub(t *testing.T) {
	img, _ := Parse(readStub(t))
	if err := img.AppendCertificate(Certificate{Revision: CertRevision2, Type: CertTypePKCSSignedData, Data: []byte("sig")}); err != nil {
		t.Fatal(err)
	}
	if _, err := BuildUKI(img.Bytes(), smallUKI()); !errors.Is(err, ErrSigned) {
		t.Errorf("BuildUKI(signed stub) = %v, want %v", err, ErrSigned)
	}
}

func TestCertificateTable(t *testing.T) {
	img, err := BuildUKI(readStub(t), smallUKI())
	if err != nil {
		t.Fatal(err)
	}
	unsigned := bytes.Clone(img.Bytes())
	want := []Certificate{
		{Revision: CertRevision2, Type: CertTypePKCSSignedData, Data: []byte("first, 13 b")},
		{Revision: CertRevision2, Type: CertTypePKCSSignedData, Data: []byte("second")},
	}
	for _, c := range want {
		if err := img.AppendCertificate(c); err != nil {
			t.Fatal(err)
		}
	}
	off, size := img.CertTable()
	if off%8 != 0 || size%8 != 0 || int(off+size) != len(img.Bytes()) {
		t.Errorf("CertTable() = %#x+%#x in a %#x-byte file, want 8-aligned and ending the file", off, size, len(img.Bytes()))
	}
	reparsed, err := Parse(img.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got, err := reparsed.Certificates()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Certificates() (-want +got):\n%s", diff)
	}
	if err := reparsed.StripCertificates(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(reparsed.Bytes(), unsigned) {
		t.Error("StripCertificates() did not restore the unsigned image")
	}
	if err := reparsed.StripCertificates(); !errors.Is(err, ErrUnsigned) {
		t.Errorf("StripCertificates(unsigned) = %v, want %v", err, ErrUnsigned)
	}
}
