package efivar

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"initos/authenticode"
	"initos/initramfs"
	"initos/internal/testenv"
	"initos/internal/vmtest"
	"initos/pecoff"
)

// Tier 3: real UEFI firmware (OVMF with Secure Boot, SMM) under qemu.
const (
	fwCode    = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	fwVarsNew = "/usr/share/OVMF/OVMF_VARS_4M.fd" // empty store: setup mode
	fwStub    = "../pecoff/testdata/linuxx64.efi.stub"
	fwMarker  = "INITOS-SB: "
)

// TestFirmwareSecureBoot proves the whole chain under OVMF, on one machine
// (one variable store) booted seven times:
//
//  1. direct kernel boot in setup mode: sbinit enrolls keys made by
//     GenerateOwnerKeys through efivarfs; SetupMode drops to 0;
//  2. the firmware boots our signed UKI from the ESP: SecureBoot=1; from
//     Linux it adds Boot#### "InitOS B" (last in BootOrder) and BootNext;
//  3. the firmware boots B once (BootCurrent is B), 4. then BootOrder's
//     first entry again;
//  5. the same UKI unsigned, 6. signed by another key, 7. signed and then
//     one byte of .cmdline changed: the firmware refuses each ("Access
//     Denied") and our init never runs.
func TestFirmwareSecureBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("tier 3: boots OVMF five times under TCG")
	}
	testenv.Tool(t, "qemu-system-x86_64")
	k, err := vmtest.FindKernel()
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	dir := t.TempDir()
	keys, err := GenerateOwnerKeys(testOwner, "InitOS fw", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p, err := keys.Payloads(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	initrd := fwInitrd(t, dir, k, p)
	ukis := fwUKIs(t, dir, k.Image, initrd, keys.DB, "addnext")
	esp := fwESP(t, dir, ukis["signed"], ukis["b"])
	m, err := vmtest.NewMachine(filepath.Join(dir, "machine"), vmtest.MachineConfig{
		Firmware: &vmtest.Firmware{Code: fwCode, Vars: fwVarsNew, SecureBoot: true},
		Disks:    []vmtest.Disk{{Path: esp}},
	})
	if err != nil {
		t.Fatal(err)
	}

	got := fwBoot(t, m, vmtest.BootSpec{Kernel: k.Image, Initrd: initrd,
		Cmdline: "console=ttyS0 panic=-1 initos.sbtest=enroll initos.marker=enroll"})
	if !strings.Contains(got, "SetupMode=0 db=CN=InitOS_fw_db marker=enroll") {
		t.Fatalf("enroll boot: %q, want SetupMode=0 and our db after enrollment", got)
	}
	got = fwBoot(t, m, vmtest.BootSpec{})
	if !strings.Contains(got, "SecureBoot=1 SetupMode=0 db=CN=InitOS_fw_db marker=signed") {
		t.Fatalf("signed UKI boot: %q, want SecureBoot=1", got)
	}
	// That boot added entry B last in BootOrder and set BootNext to it:
	// the firmware boots B once, then BootOrder's first entry again.
	got = fwBoot(t, m, vmtest.BootSpec{})
	if !strings.Contains(got, "SecureBoot=1") || !strings.Contains(got, "marker=b BootCurrent=") {
		t.Fatalf("boot after BootNext: %q, want entry B (marker=b)", got)
	}
	bootB := got[strings.LastIndex(got, "=")+1:]
	got = fwBoot(t, m, vmtest.BootSpec{})
	if !strings.Contains(got, "marker=signed") || strings.HasSuffix(got, "="+bootB) {
		t.Fatalf("second boot after BootNext: %q, want BootOrder's first entry again (not Boot%s)", got, bootB)
	}
	for _, name := range []string{"unsigned", "other-key", "tampered-cmdline"} {
		t.Run(name, func(t *testing.T) {
			testenv.Run(t, "mcopy", "-o", "-i", m.DiskPath(0), ukis[name], "::/EFI/BOOT/BOOTX64.EFI")
			if got := fwBoot(t, m, vmtest.BootSpec{}); got != "Access Denied" {
				t.Errorf("boot of %s UKI: %q, want the firmware's Access Denied", name, got)
			}
		})
	}
}

// TestFirmwareSnakeoil: under Debian's Secure Boot OVMF with its
// "snakeoil" keys enrolled, a UKI we sign with the snakeoil db key boots
// with SecureBoot=1 and the unsigned one is refused.
func TestFirmwareSnakeoil(t *testing.T) {
	if testing.Short() {
		t.Skip("tier 3: boots OVMF twice under TCG")
	}
	testenv.Tool(t, "qemu-system-x86_64")
	k, err := vmtest.FindKernel()
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	dir := t.TempDir()
	keyPEM := filepath.Join(dir, "snakeoil.key")
	testenv.Run(t, "openssl", "pkey", "-in", "/usr/share/ovmf/PkKek-1-snakeoil.key", "-passin", "pass:snakeoil", "-out", keyPEM)
	key, err := authenticode.ParsePrivateKey(readOrFatal(t, keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := authenticode.ParseCertificates(readOrFatal(t, "/usr/share/ovmf/PkKek-1-snakeoil.pem"))
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("snakeoil key is %T, want RSA", key)
	}
	ukis := fwUKIs(t, dir, k.Image, fwInitrd(t, dir, k, &Payloads{}), KeyPair{Key: rsaKey, Cert: certs[0]}, "report")
	m, err := vmtest.NewMachine(filepath.Join(dir, "machine"), vmtest.MachineConfig{
		Firmware: vmtest.OVMFSecureBoot(),
		Disks:    []vmtest.Disk{{Path: fwESP(t, dir, ukis["signed"], ukis["b"])}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := fwBoot(t, m, vmtest.BootSpec{}); !strings.Contains(got, "SecureBoot=1 SetupMode=0 db=O=SnakeOil") || !strings.Contains(got, "marker=signed") {
		t.Fatalf("snakeoil-signed UKI boot: %q, want SecureBoot=1", got)
	}
	testenv.Run(t, "mcopy", "-o", "-i", m.DiskPath(0), ukis["unsigned"], "::/EFI/BOOT/BOOTX64.EFI")
	if got := fwBoot(t, m, vmtest.BootSpec{}); got != "Access Denied" {
		t.Errorf("unsigned UKI boot: %q, want the firmware's Access Denied", got)
	}
}

// fwInitrd packs sbinit, efivarfs.ko and the .auth payloads.
func fwInitrd(t *testing.T, dir string, k vmtest.Kernel, p *Payloads) string {
	t.Helper()
	bin := filepath.Join(dir, "sbinit")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./internal/sbinit")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build sbinit: %v\n%s", err, out)
	}
	mods, _ := filepath.Glob(filepath.Join(k.ModulesDir, "kernel/fs/efivarfs/efivarfs.ko*"))
	if len(mods) != 1 {
		t.Fatalf("efivarfs module in %s: found %q", k.ModulesDir, mods)
	}
	var a initramfs.Archive
	if err := a.AddHostFile("init", bin); err != nil {
		t.Fatal(err)
	}
	a.AddDir("dev", 0o755)
	a.AddCharDevice("dev/console", 0o600, 5, 1)
	a.AddDir("proc", 0o755)
	a.AddDir("sys", 0o755)
	a.AddDir("keys", 0o755)
	a.AddFile("efivarfs.ko"+strings.TrimPrefix(filepath.Base(mods[0]), "efivarfs.ko"), 0o644, readOrFatal(t, mods[0]))
	a.AddFile("keys/db.auth", 0o644, p.DB)
	a.AddFile("keys/KEK.auth", 0o644, p.KEK)
	a.AddFile("keys/PK.auth", 0o644, p.PK)
	out := filepath.Join(dir, "initrd.img")
	if err := a.WriteFile(out, initramfs.Zstd); err != nil {
		t.Fatal(err)
	}
	return out
}

func readOrFatal(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fwUKIs builds the UKI variants the firmware must accept or refuse; mode
// is the sbinit mode of the "signed" one (and its broken copies).
func fwUKIs(t *testing.T, dir, kernel, initrd string, db KeyPair, mode string) map[string]string {
	t.Helper()
	buildCmdline := func(cmdline string) *pecoff.Image {
		img, err := pecoff.BuildUKI(readOrFatal(t, fwStub), pecoff.UKI{
			OSRelease: []byte("ID=initos\n"), Cmdline: []byte("console=ttyS0 panic=-1 " + cmdline),
			Linux: readOrFatal(t, kernel), Initrd: readOrFatal(t, initrd),
		})
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	build := func() *pecoff.Image { return buildCmdline("initos.sbtest=" + mode + " initos.marker=signed") }
	other, err := newKeyPair("InitOS other", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	variants := map[string]func() []byte{
		"signed":    func() []byte { return fwSign(t, build(), db) },
		"b":         func() []byte { return fwSign(t, buildCmdline("initos.sbtest=report initos.marker=b"), db) },
		"unsigned":  func() []byte { return build().Bytes() },
		"other-key": func() []byte { return fwSign(t, build(), other) },
		"tampered-cmdline": func() []byte {
			b := bytes.Clone(fwSign(t, build(), db))
			i := bytes.Index(b, []byte("marker=signed"))
			b[i+len("marker=signe")] = 'x'
			return b
		},
	}
	paths := map[string]string{}
	for name, f := range variants {
		paths[name] = filepath.Join(dir, name+".efi")
		if err := os.WriteFile(paths[name], f(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

func fwSign(t *testing.T, img *pecoff.Image, kp KeyPair) []byte {
	t.Helper()
	if err := authenticode.Sign(img, kp.Key, kp.Cert, authenticode.SignOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := authenticode.Verify(img, []*x509.Certificate{kp.Cert}); err != nil {
		t.Fatal(err)
	}
	return img.Bytes()
}

// fwESP makes a FAT image (no partition table: OVMF reads it as removable
// media) holding uki as \EFI\BOOT\BOOTX64.EFI and b as \EFI\Linux\b.efi.
func fwESP(t *testing.T, dir, uki, b string) string {
	t.Helper()
	esp := filepath.Join(dir, "esp.img")
	testenv.Run(t, "mkfs.vfat", "-C", "-n", "ESP", esp, "65536")
	testenv.Run(t, "mmd", "-i", esp, "::/EFI", "::/EFI/BOOT", "::/EFI/Linux")
	testenv.Run(t, "mcopy", "-i", esp, uki, "::/EFI/BOOT/BOOTX64.EFI")
	testenv.Run(t, "mcopy", "-i", esp, b, "::/EFI/Linux/b.efi")
	return esp
}

// fwBoot boots m and returns what decided the boot: the INITOS-SB line
// (without the prefix), or "Access Denied" when the firmware refused the
// image. It stops qemu as soon as either shows up.
func fwBoot(t *testing.T, m *vmtest.Machine, spec vmtest.BootSpec) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	w := &fwWatch{cancel: cancel}
	spec.Console = w
	res, err := m.Boot(ctx, spec)
	if got := w.result(); got != "" {
		t.Logf("boot %s in %v: %s", res.Dir, res.Elapsed.Round(time.Second), fwEvidence(res.Console))
		return got
	}
	t.Fatalf("boot: %v: no verdict\nqemu: %s\nconsole tail:\n%s", err, res.CommandLine(), fwTail(res.Console))
	return ""
}

type fwWatch struct {
	mu      sync.Mutex
	buf     []byte
	verdict string
	cancel  context.CancelFunc
}

func (w *fwWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if w.verdict != "" {
		return len(p), nil
	}
	s := string(w.buf)
	if i := strings.Index(s, fwMarker); i >= 0 {
		if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
			w.verdict = strings.TrimSpace(s[i+len(fwMarker) : i+j])
		}
	} else if strings.Contains(s, "Access Denied") {
		w.verdict = "Access Denied"
		w.cancel()
	}
	return len(p), nil
}

func (w *fwWatch) result() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.verdict
}

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;=]*[a-zA-Z]`)

// fwEvidence returns the console lines that show the verdict.
func fwEvidence(console []byte) string {
	var lines []string
	for _, l := range strings.Split(string(console), "\n") {
		l = ansiEscape.ReplaceAllString(l, "")
		if strings.Contains(l, "BdsDxe") || strings.Contains(l, fwMarker) || strings.Contains(l, "Secure boot") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return strings.Join(lines, " | ")
}

func fwTail(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
