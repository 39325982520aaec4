package build

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"initos/internal/testenv"
)

// TestBuildOracles checks the outputs with the C tools: unsquashfs lists
// the tree our reader sees, owned by root; veritysetup verify accepts the
// tree with the manifest's root hash; sbverify accepts the UKI with the db
// certificate; objdump lists its sections.
func TestBuildOracles(t *testing.T) {
	unsquashfs := testenv.Tool(t, "unsquashfs")
	veritysetup := testenv.Tool(t, "veritysetup")
	sbverify := testenv.Tool(t, "sbverify")
	objdump := testenv.Tool(t, "objdump")
	opts := options(t, writeImage(t, hostLayers(t)...))
	m, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(opts.OutDir, m.ModulesImage.File)
	efi := filepath.Join(opts.OutDir, UKIFile)

	out := testenv.Run(t, unsquashfs, "-lln", "-o", "0", img)
	want := tree(t, readOut(t, opts.OutDir)[m.ModulesImage.File], m.ModulesImage.DataSize)
	listed := 0
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.Contains(f[1], "/") {
			continue
		}
		listed++
		if f[1] != "0/0" {
			t.Errorf("unsquashfs -lln: %s owned by %s, want 0/0", line, f[1])
		}
		p := strings.TrimPrefix(f[5], "squashfs-root/")
		if _, ok := want[p]; !ok && f[5] != "squashfs-root" {
			t.Errorf("unsquashfs lists %s, which our reader does not see", p)
		}
	}
	if listed != len(want) {
		t.Errorf("unsquashfs -lln lists %d entries, our reader %d:\n%s", listed, len(want), out)
	}

	testenv.Run(t, veritysetup, "verify", "--hash-offset", strconv.FormatInt(m.ModulesImage.HashOffset, 10), img, img, m.ModulesImage.RootHash)

	cert := filepath.Join(t.TempDir(), "db.crt")
	certPEM := readKeysCert(t)
	if err := os.WriteFile(cert, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, sbverify, "--cert", cert, efi)
	if out, err := exec.Command(sbverify, "--cert", "/usr/share/ovmf/PkKek-1-snakeoil.pem", efi).CombinedOutput(); err == nil {
		t.Errorf("sbverify accepts the UKI with another certificate:\n%s", out)
	}

	sections := string(testenv.Run(t, objdump, "-h", efi))
	for _, s := range []string{".osrel", ".cmdline", ".uname", ".pcrpkey", ".initrd", ".pcrsig", ".linux"} {
		if !strings.Contains(sections, " "+s+" ") {
			t.Errorf("objdump -h: no %s section:\n%s", s, sections)
		}
	}
}
