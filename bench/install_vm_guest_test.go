//go:build vmguest

package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"initos/enroll"
	"initos/install"
	"initos/internal/installtest"
	"initos/luks2"
	"initos/tpm2"
)

// Guest side of BenchmarkInstall: two rounds, each installing with
// initos on one disk and by hand with the C tools on the other, then the
// other way round.
func TestGuestInstallBench(t *testing.T) {
	if err := os.MkdirAll("/payload", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("/dev/vdc", "/payload", "squashfs", unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("mount the payload: %v", err)
	}
	disks := [2]string{"vda", "vdb"}
	for round := 0; round < 2; round++ { // each side goes first once, on each disk once
		ours, theirs := disks[round%2], disks[1-round%2]
		if round == 0 {
			instBenchOurs(t, ours)
			instBenchTheirs(t, "/dev/"+theirs)
		} else {
			instBenchTheirs(t, "/dev/"+theirs)
			instBenchOurs(t, ours)
		}
	}
}

// rusage returns the CPU time (user + system) of self and children.
func instRusage() (self, children time.Duration) {
	var s, c unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &s)
	unix.Getrusage(unix.RUSAGE_CHILDREN, &c)
	cpu := func(r unix.Rusage) time.Duration {
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	return cpu(s), cpu(c)
}

func instReport(t *testing.T, name string, d time.Duration) {
	t.Logf("BENCH %s %.1f", name, float64(d.Microseconds())/1000)
}

// benchOurs runs install.Run; the TPM enrollment is timed on its own.
func instBenchOurs(t *testing.T, disk string) {
	var tpmTime time.Duration
	enrollFn := func(d luks2.Device, h *luks2.Header, vk *luks2.Secret) error {
		start := time.Now()
		defer func() { tpmTime += time.Since(start) }()
		tpm, err := tpm2.Open(tpm2.Device{})
		if err != nil {
			return err
		}
		defer tpm.Close()
		_, err = enroll.Enroll(tpm, d, h, vk, enroll.DefaultPolicy(nil))
		return err
	}
	cfg := &install.Config{Disks: []string{"/dev/" + disk}, Yes: true, Wipe: true, Force: true,
		UKI: "/payload/initos.efi", Modules: "/payload/modules-" + installtest.Release + ".sqfs", Image: "oci:/payload/oci",
		ModulesRootHash: instPayload(t, "modules.roothash"),
		SecureBoot:      install.SecureBootConfig{DBCert: "/payload/keys/db.crt"}}
	var out bytes.Buffer
	s0, c0 := instRusage()
	start := time.Now()
	sum, err := install.Run(context.Background(), cfg, install.Options{Out: &out, Enroll: enrollFn, ShowRecoveryKey: func(string) error { return nil }})
	total := time.Since(start)
	s1, c1 := instRusage()
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out.String())
	}
	step := map[string]time.Duration{}
	for _, s := range sum.Steps {
		step[s.Name] = time.Duration(s.Duration * float64(time.Second))
	}
	instReport(t, "initos-gpt-ms", step["gpt"])
	instReport(t, "initos-fat-ms", step["esp"])
	instReport(t, "initos-luks-ms", step["luks"]-tpmTime)
	instReport(t, "initos-tpm-ms", tpmTime)
	instReport(t, "initos-mkfs-ms", step["btrfs"])
	instReport(t, "initos-image-ms", step["image"])
	instReport(t, "initos-rest-ms", total-step["gpt"]-step["esp"]-step["luks"]-step["btrfs"]-step["image"])
	instReport(t, "initos-preflight-ms", step["preflight"])
	instReport(t, "initos-finish-ms", step["config"]+step["finish"])
	instReport(t, "initos-total-ms", total)
	instReport(t, "initos-cpu-ms", s1-s0+c1-c0)
}

// sh runs a C tool, failing the test with its output.
func instSh(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// timed runs f and reports its wall time and adds its children's CPU.
func instTimed(t *testing.T, name string, cpu *time.Duration, f func()) time.Duration {
	_, c0 := instRusage()
	start := time.Now()
	f()
	d := time.Since(start)
	_, c1 := instRusage()
	*cpu += c1 - c0
	instReport(t, "c-"+name+"-ms", d)
	return d
}

// benchTheirs makes the same layout with sgdisk, mkfs.fat, mtools,
// cryptsetup, systemd-cryptenroll, mkfs.btrfs and tar.
func instBenchTheirs(t *testing.T, dev string) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	os.WriteFile(key, []byte(strings.Repeat("cbdefghi", 8)), 0o600)
	mnt := filepath.Join(dir, "mnt")
	uki, modules := "/payload/initos.efi", "/payload/modules-"+installtest.Release+".sqfs"
	var cpu, total time.Duration
	var rest time.Duration
	rest += instTimed(t, "preflight", &cpu, func() { instVerifyInputs(t, uki, modules) })
	total += instTimed(t, "gpt", &cpu, func() {
		instSh(t, "sgdisk", "--zap-all", dev)
		instSh(t, "sgdisk", "-n", "1:2048:+500M", "-t", "1:ef00", "-c", "1:InitOS ESP A", "-n", "2:0:+500M", "-t", "2:ef00", "-c", "2:InitOS ESP B",
			"-n", "3:0:0", "-t", "3:CA7D7CCB-63ED-4C53-861C-1742536059CC", "-c", "3:InitOS LUKS", dev)
		instSh(t, "partx", "-u", dev)
		instWaitNode(t, dev+"3")
	})
	total += instTimed(t, "fat", &cpu, func() {
		for i, label := range []string{"INITOS_A", "INITOS_B"} {
			p := fmt.Sprintf("%s%d", dev, i+1)
			instSh(t, "mkfs.fat", "-F", "32", "-n", label, p)
			instSh(t, "mmd", "-i", p, "::/EFI", "::/EFI/BOOT", "::/EFI/Linux", "::/initos")
			instSh(t, "mcopy", "-i", p, "/payload/initos.efi", "::/EFI/BOOT/BOOTX64.EFI")
			instSh(t, "mcopy", "-i", p, "/payload/initos.efi", "::/EFI/Linux/initos.efi")
			instSh(t, "mcopy", "-i", p, "/payload/modules-"+installtest.Release+".sqfs", "::/initos/")
		}
		syscall.Sync()
		tmp := filepath.Join(dir, "back")
		for i := range 2 {
			p := fmt.Sprintf("%s%d", dev, i+1)
			instReadBack(t, p, "::/EFI/BOOT/BOOTX64.EFI", uki, tmp)
			instReadBack(t, p, "::/EFI/Linux/initos.efi", uki, tmp)
			instReadBack(t, p, "::/initos/"+filepath.Base(modules), modules, tmp)
		}
		os.Remove(tmp)
	})
	luks := dev + "3"
	total += instTimed(t, "luks", &cpu, func() {
		instSh(t, "cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2", "--hash", "sha512",
			"--pbkdf-force-iterations", "1000", "--label", "initos", "--key-file", key, luks)
		instSh(t, "systemd-cryptenroll", "--unlock-key-file="+key, "--recovery-key", luks)
	})
	total += instTimed(t, "tpm", &cpu, func() {
		instSh(t, "systemd-cryptenroll", "--unlock-key-file="+key, "--tpm2-device=/dev/tpmrm0", "--tpm2-pcrs=7", luks)
	})
	total += instTimed(t, "mkfs", &cpu, func() {
		instSh(t, "cryptsetup", "open", "--key-file", key, luks, "cbench")
		instSh(t, "mkfs.btrfs", "-f", "-q", "-L", "initos", "/dev/mapper/cbench")
		os.MkdirAll(mnt, 0o700)
		if err := unix.Mount("/dev/mapper/cbench", mnt, "btrfs", 0, ""); err != nil {
			t.Fatal(err)
		}
	})
	total += instTimed(t, "image", &cpu, func() {
		instSh(t, "sha256sum", "/payload/root.tar.gz")
		instPipeSum(t, "/payload/root.tar.gz")
		os.MkdirAll(filepath.Join(mnt, "images/roots"), 0o755)
		instSh(t, "btrfs", "-q", "subvolume", "create", filepath.Join(mnt, "images/roots/host"))
		instSh(t, "tar", "-xzf", "/payload/root.tar.gz", "-C", filepath.Join(mnt, "images/roots/host"))
		syscall.Sync()
	})
	rest += instTimed(t, "finish", &cpu, func() {
		os.WriteFile(filepath.Join(mnt, "initos.conf"), []byte("root=images/roots/host\nroot.a=images/roots/host\nroot.b=images/roots/host\n"), 0o644)
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Fatal(err)
		}
		instSh(t, "cryptsetup", "close", "cbench")
	})
	instReport(t, "c-rest-ms", rest)
	total += rest
	instReport(t, "c-total-ms", total)
	instReport(t, "c-cpu-ms", cpu)
}

// payload reads a small text file of the payload.
func instPayload(t *testing.T, name string) string {
	b, err := os.ReadFile("/payload/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// verifyInputs checks the UKI's signature and the modules image's tree
// (what the installer's preflight does).
func instVerifyInputs(t *testing.T, uki, modules string) {
	instSh(t, "sbverify", "--cert", "/payload/keys/db.crt", uki)
	instSh(t, "veritysetup", "verify", "--hash-offset", instPayload(t, "modules.hashoffset"), modules, modules, instPayload(t, "modules.roothash"))
}

// readBack copies a file off an ESP with mtype and checks it against
// its source (sha256sum) and, by kind, sbverify or veritysetup.
func instReadBack(t *testing.T, part, espPath, src, tmp string) {
	cmd := exec.Command("mtype", "-i", part, espPath)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("mtype %s: %v", espPath, err)
	}
	os.WriteFile(tmp, b, 0o600)
	sum := func(p string) string {
		out, _ := exec.Command("sha256sum", p).Output()
		f := strings.Fields(string(out))
		if len(f) == 0 {
			t.Fatalf("sha256sum %s failed", p)
		}
		return f[0]
	}
	if sum(tmp) != sum(src) {
		t.Fatalf("%s read back differs from %s", espPath, src)
	}
	if strings.HasSuffix(src, ".efi") {
		instSh(t, "sbverify", "--cert", "/payload/keys/db.crt", tmp)
	} else {
		instSh(t, "veritysetup", "verify", "--hash-offset", instPayload(t, "modules.hashoffset"), tmp, tmp, instPayload(t, "modules.roothash"))
	}
}

// pipeSum runs gzip -dc FILE | sha256sum.
func instPipeSum(t *testing.T, file string) {
	gz := exec.Command("gzip", "-dc", file)
	sum := exec.Command("sha256sum")
	r, err := gz.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sum.Stdin = r
	if err := gz.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := sum.Output(); err != nil || len(out) < 64 {
		t.Fatalf("gzip -dc | sha256sum: %v", err)
	}
	if err := gz.Wait(); err != nil {
		t.Fatal(err)
	}
}

func instWaitNode(t *testing.T, p string) {
	for i := 0; i < 500; i++ {
		if _, err := os.Stat(p); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s did not appear", p)
}
