package pecoff

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"

	"initos/internal/testenv"
	"initos/internal/vmtest"
)

// objdumpRow is one line of `objdump -h`: what both recipes must agree on.
type objdumpRow struct{ Name, Size, VMA, FileOff string }

var objdumpLine = regexp.MustCompile(`(?m)^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)`)

func objdumpSections(t *testing.T, path string) []objdumpRow {
	t.Helper()
	var rows []objdumpRow
	for _, m := range objdumpLine.FindAllStringSubmatch(string(testenv.Run(t, "objdump", "-h", "-w", path)), -1) {
		rows = append(rows, objdumpRow{m[1], m[2], m[3], m[4]})
	}
	return rows
}

// TestOracleObjcopyRecipe: objdump -h shows the same section names, sizes,
// VMAs and file offsets for our UKI as for the classic objcopy recipe
// (--add-section/--change-section-vma with ukify's VMAs) on the same inputs.
func TestOracleObjcopyRecipe(t *testing.T) {
	testenv.Tool(t, "objcopy")
	dir := t.TempDir()
	u := smallUKI()
	kern, err := vmtest.FindKernel()
	if err != nil {
		testenv.Missing(t, "Debian kernel (linux-image-amd64): %v", err)
	}
	if u.Linux, err = os.ReadFile(kern.Image); err != nil {
		t.Fatal(err)
	}
	img, err := BuildUKI(readStub(t), u)
	if err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(dir, "ours.efi")
	if err := os.WriteFile(ours, img.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	stubSections := 8
	args := []string{}
	for _, s := range img.Sections()[stubSections:] {
		p := filepath.Join(dir, s.Name[1:])
		if err := os.WriteFile(p, img.Section(s.Name), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--add-section", s.Name+"="+p, "--change-section-vma", fmt.Sprintf("%s=%#x", s.Name, s.VirtualAddress))
	}
	// objcopy works on the stub without its symbol table, as ukify does.
	stub, _ := Parse(readStub(t))
	if _, err := stub.StripSymbolTable(); err != nil {
		t.Fatal(err)
	}
	stubPath := filepath.Join(dir, "stub.efi")
	if err := os.WriteFile(stubPath, stub.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(dir, "objcopy.efi")
	testenv.Run(t, "objcopy", append(args, stubPath, theirs)...)
	want, got := objdumpSections(t, theirs), objdumpSections(t, ours)
	if len(got) != len(img.Sections()) {
		t.Fatalf("objdump -h found %d sections in our UKI, want %d", len(got), len(img.Sections()))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("objdump -h (-objcopy +ours):\n%s", diff)
	}
}
