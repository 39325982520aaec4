package bench

import (
	"context"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf16"

	"initos/efivar"
	"initos/internal/testenv"
	"initos/internal/updatetest"
	"initos/update"
)

// Sizes of the staged builds: a UKI of Debian's kernel and the production
// initrd (~12 MiB), and a modules image of its whole modules tree (~90 MB,
// docs/vmtest.md).
const (
	stageBenchKernel  = 12 << 20
	stageBenchModules = 88 << 20
)

// BenchmarkStage stages an upgrade into the inactive slot: initos
// (update.Stage, in process) against the same work done by the C tools
// in a shell, in the same iteration (interleaved), on the same filesystem:
//
//   - initos: the UKI written twice (EFI/Linux/initos.efi and
//     EFI/BOOT/BOOTX64.EFI) and the modules image, each through a temporary
//     file, fsync and rename, the directory fsynced; then read back from the
//     disk (page cache dropped) and checked: Authenticode against db, the
//     signed config, the verity tree against the root hash; then the
//     trial record and BootNext (two small files in a directory standing in
//     for efivarfs);
//   - peer: `cp` + `sync FILE` + `mv` for the same three files, `sync -f`
//     for the directories, the page cache of the three dropped (`dd
//     iflag=nocache count=0`), then `sbverify --cert db.crt` of both UKI
//     copies and `veritysetup verify` of the modules image with its root
//     hash and hash offset.
//
// Each iteration stages the other of two builds, so that every byte is
// written each time (a rerun of the same build writes nothing). Metrics:
// initos_ms, peer_ms, x_wall (peer/initos), initos_cpu_ms (this process's
// rusage), peer_cpu_ms (the children's), x_cpu, and bytes_written per stage.
func BenchmarkStage(b *testing.B) {
	sbverify, veritysetup := testenv.Tool(b, "sbverify"), testenv.Tool(b, "veritysetup")
	db := updatetest.LoadSigner(b, "db")
	builds := [2]*updatetest.Build{
		updatetest.NewBuildSized(b, db, 1, "v1", stageBenchModules, stageBenchKernel),
		updatetest.NewBuildSized(b, db, 1, "v2", stageBenchModules, stageBenchKernel),
	}
	srcs := [2]string{builds[0].Dir(b), builds[1].Dir(b)}
	sys := stageBenchHost(b, db)
	peerESP := b.TempDir()
	certFile := filepath.Join(b.TempDir(), "db.crt")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: db.Cert.Raw}), 0o644)
	var ours, theirs, oursCPU, theirsCPU time.Duration
	var written int64
	b.SetBytes(int64(2*len(builds[0].UKI) + len(builds[0].Modules)))
	i := 0
	for b.Loop() {
		i++
		bd, src := builds[i%2], srcs[i%2]
		u0, t0 := selfCPU(), time.Now()
		res := stageBenchOurs(b, sys, src)
		ours, oursCPU = ours+time.Since(t0), oursCPU+selfCPU()-u0
		written += res.BytesWritten
		c0, t1 := childCPU(), time.Now()
		stageBenchPeer(b, sbverify, veritysetup, certFile, bd, src, peerESP)
		theirs, theirsCPU = theirs+time.Since(t1), theirsCPU+childCPU()-c0
		sys.Vars.Delete("BootNext", efivar.GlobalVariable)
	}
	n := float64(b.N)
	b.ReportMetric(ours.Seconds()*1e3/n, "initos_ms")
	b.ReportMetric(theirs.Seconds()*1e3/n, "peer_ms")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "x_wall")
	b.ReportMetric(oursCPU.Seconds()*1e3/n, "initos_cpu_ms")
	b.ReportMetric(theirsCPU.Seconds()*1e3/n, "peer_cpu_ms")
	b.ReportMetric(theirsCPU.Seconds()/oursCPU.Seconds(), "x_cpu")
	b.ReportMetric(float64(written)/n, "bytes_written")
}

func stageBenchOurs(b *testing.B, sys *update.System, from string) *update.StageResult {
	src, err := update.OpenSource(context.Background(), from, update.RegistryOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	res, err := update.Stage(context.Background(), sys, src, update.StageOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// stageBenchPeer does the staging work with the C tools.
func stageBenchPeer(b *testing.B, sbverify, veritysetup, cert string, bd *updatetest.Build, src, esp string) {
	m := bd.Config.ModulesImage
	mods := filepath.Join(esp, m.File)
	script := fmt.Sprintf(`set -e
mkdir -p %[1]s/EFI/Linux %[1]s/EFI/BOOT %[1]s/initos
for f in EFI/Linux/initos.efi EFI/BOOT/BOOTX64.EFI; do
	cp %[2]s %[1]s/$f.tmp; sync %[1]s/$f.tmp; mv %[1]s/$f.tmp %[1]s/$f
done
cp %[3]s %[4]s.tmp; sync %[4]s.tmp; mv %[4]s.tmp %[4]s
sync -f %[1]s/EFI/Linux %[1]s/EFI/BOOT %[1]s/initos
for f in %[1]s/EFI/Linux/initos.efi %[1]s/EFI/BOOT/BOOTX64.EFI %[4]s; do dd if=$f iflag=nocache count=0 status=none; done
%[5]s --cert %[6]s %[1]s/EFI/Linux/initos.efi >/dev/null
%[5]s --cert %[6]s %[1]s/EFI/BOOT/BOOTX64.EFI >/dev/null
%[7]s verify --hash-offset %[8]d %[4]s %[4]s %[9]s
`, esp, bd.UKIFile(src), bd.ModulesFile(src), mods, sbverify, cert, veritysetup, m.HashOffset, m.RootHash)
	if out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput(); err != nil {
		b.Fatalf("peer pipeline: %v\n%s", err, out)
	}
}

// stageBenchHost is a host booted from slot a whose ESPs are directories.
func stageBenchHost(b *testing.B, db updatetest.Signer) *update.System {
	vars := &efivar.Dir{Path: b.TempDir()}
	a, bb := b.TempDir(), b.TempDir()
	ua, ub := "6f3c2d1e-0000-4000-8000-00000000000a", "6f3c2d1e-0000-4000-8000-00000000000b"
	sys := &update.System{Vars: vars, Mounter: update.DirMounter{ua: a, ub: bb}, ESPs: []update.ESP{
		{Slot: "a", Number: 1, PartUUID: ua, Start: 2048, Size: 1 << 20},
		{Slot: "b", Number: 2, PartUUID: ub, Start: 2048 + 1<<20, Size: 1 << 20}}}
	list, _ := efivar.AppendSignatureLists(nil, efivar.X509List(efivar.GUID{1}, db.Cert))
	vars.Set("db", efivar.ImageSecurityDB, efivar.AuthAttributes, list)
	for _, s := range []string{"a", "b"} {
		if _, err := sys.EnsureEntry(s); err != nil {
			b.Fatal(err)
		}
	}
	efivar.SetBootOrder(vars, []uint16{0, 1})
	var u []byte
	for _, c := range utf16.Encode([]rune(strings.ToUpper(ua) + "\x00")) {
		u = binary.LittleEndian.AppendUint16(u, c)
	}
	vars.Set("LoaderDevicePartUUID", efivar.MustParseGUID("4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"), 6, u)
	return sys
}

// childCPU is the CPU time of this process's reaped children.
func childCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
