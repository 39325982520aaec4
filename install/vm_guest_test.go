//go:build vmguest

package install

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"initos/efivar"
	"initos/enroll"
	"initos/internal/vmtest"
	"initos/luks2"
	"initos/tpm2"
)

// Guest side of TestVM (vm_test.go): the installer against blank virtio
// disks, with device-mapper, btrfs, efivarfs (OVMF) and a TPM (swtpm).

// hasUEFI and hasTPM tell the machine kinds apart: the two-disk machine
// boots through OVMF with a TPM; the power-cut machine boots directly (a
// faster boot per cut), with its boot entries in a directory and the
// volumes opened by the recovery key only.
func hasUEFI() bool { _, err := os.Stat("/sys/firmware/efi"); return err == nil }
func hasTPM() bool  { _, err := os.Stat("/dev/tpm0"); return err == nil }

// guestSetup mounts efivarfs once, when there is UEFI.
func guestSetup(t *testing.T) {
	t.Helper()
	const efivars = "/sys/firmware/efi/efivars"
	if !hasUEFI() {
		return
	}
	var st unix.Statfs_t
	if unix.Statfs(efivars, &st) == nil && st.Type == unix.EFIVARFS_MAGIC {
		return
	}
	if err := unix.Mount("efivarfs", efivars, "efivarfs", 0, ""); err != nil {
		t.Fatalf("mount efivarfs: %v", err)
	}
}

// guestDisks returns the target disks named on the kernel command line
// (initos.test.disks=ID,ID).
func guestDisks(t *testing.T) []string {
	t.Helper()
	b, _ := os.ReadFile("/proc/cmdline")
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "initos.test.disks="); ok {
			return strings.Split(v, ",")
		}
	}
	t.Fatal("no initos.test.disks= on the kernel command line")
	return nil
}

// guestConfig is the install of the fixture the host packed under /fx.
func guestConfig(t *testing.T) *Config {
	cfg := &Config{Disks: guestDisks(t), Yes: true, Force: true, UKI: "/fx/initos.efi",
		Modules: "/fx/modules-" + testRelease + ".sqfs", Image: "oci:/fx/image",
		SecureBoot: SecureBootConfig{DBCert: "/fx/keys/db.crt"}, ESPSize: 40 << 20, MinRootSize: 200 << 20}
	cfg.TPM.Disable = !hasTPM()
	return cfg
}

func guestOptions(t *testing.T, out *bytes.Buffer) Options {
	o := Options{Out: out, ShowRecoveryKey: func(key string) error {
		return saveKey(keyDiskPath(t), key)
	}}
	if !hasUEFI() {
		os.MkdirAll("/tmp/efivars", 0o755)
		o.EFI = &efivar.Dir{Path: "/tmp/efivars"}
	}
	return o
}

// keyDiskPath is where the guest keeps the recovery key it was shown,
// across power cuts: the raw disk the host attached last (the operator's
// sheet of paper).
func keyDiskPath(t *testing.T) string {
	m, _ := filepath.Glob("/dev/vd[a-z]")
	return m[len(m)-1]
}

func saveKey(dev, key string) error {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 4096)
	copy(b, key+"\n")
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	return f.Sync()
}

func loadKey(t *testing.T) string {
	f, err := os.Open(keyDiskPath(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 4096)
	f.ReadAt(b, 0)
	k, _, _ := strings.Cut(string(b), "\n")
	return k
}

// TestGuestCut runs the install and cuts the power right after the step
// named by the subtest (the host runs one subtest per boot).
func TestGuestCut(t *testing.T) {
	guestSetup(t)
	for _, step := range Steps[3:] {
		t.Run(step, func(t *testing.T) {
			var out bytes.Buffer
			opts := guestOptions(t, &out)
			opts.AfterStep = func(s string) error {
				if s == step {
					os.Stdout.WriteString(out.String())
					vmtest.PowerCut()
				}
				return nil
			}
			sum, err := Run(context.Background(), guestConfig(t), opts)
			t.Fatalf("Run() = %+v, %v: the install went past %s without the power cut\n%s", sum, err, step, out.String())
		})
	}
}

// TestGuestInstall completes the install (or finds it complete) and runs
// it once more: a rerun of a complete install changes nothing.
func TestGuestInstall(t *testing.T) {
	guestSetup(t)
	var out bytes.Buffer
	sum, err := Run(context.Background(), guestConfig(t), guestOptions(t, &out))
	t.Logf("install:\n%s", out.String())
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}
	var text bytes.Buffer
	sum.Write(&text)
	t.Logf("summary:\n%s", text.String())
	out.Reset()
	again, err := Run(context.Background(), guestConfig(t), guestOptions(t, &out))
	if err != nil || !again.AlreadyComplete {
		t.Fatalf("rerun: Run() = %+v, %v; want the install already complete", again, err)
	}
	for _, s := range again.Steps[3:] {
		if !strings.HasPrefix(s.Status, "skipped") && s.Status != "already done" {
			t.Errorf("rerun: step %s = %q, want skipped or already done", s.Name, s.Status)
		}
	}
}

// TestGuestVerify checks the installed disks from the outside.
func TestGuestVerify(t *testing.T) {
	guestSetup(t)
	sys := System{}.withDefaults()
	var devs []string
	var names []string
	for i, id := range guestDisks(t) {
		name, err := sys.resolveDisk(id)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		part, _ := sys.partitionNode(name, PartLUKS)
		devs = append(devs, openGuestVolume(t, part, i))
	}
	checkRoot(t, devs)
	checkESPs(t, sys, names)
	if hasUEFI() {
		checkEntries(t, sys, names[0])
	}
}

// openGuestVolume checks the volume's tokens, opens it with the recovery
// key (and checks the TPM unseals too) and returns the mapper node.
func openGuestVolume(t *testing.T, part string, i int) string {
	t.Helper()
	f, h, err := readVolume(part)
	if err != nil {
		t.Fatalf("read %s: %v", part, err)
	}
	defer f.Close()
	types := map[string]int{}
	_, toks := h.Tokens()
	for _, tk := range toks {
		types[tk.Type]++
	}
	if tpm := map[bool]int{true: 1}[hasTPM()]; types["systemd-recovery"] != 1 || types["systemd-tpm2"] != tpm || types[TokenType] != 1 {
		t.Errorf("%s tokens = %v, want one each of systemd-recovery, %s and %d systemd-tpm2", part, types, TokenType, tpm)
	}
	if tok := findToken(h); tok == nil || tok.State != StateComplete {
		t.Errorf("%s install token = %+v, want complete", part, tok)
	}
	unsealTPM(t, f, h)
	vk, _, err := h.Unlock(f, []byte(loadKey(t)))
	if err != nil {
		t.Fatalf("%s: the recovery key does not open it: %v", part, err)
	}
	defer vk.Destroy()
	node, err := h.Activate("verify"+string(rune('0'+i)), part, vk, luks2.ActivateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { luks2.Deactivate("verify" + string(rune('0'+i))) })
	return node
}

// unsealTPM opens the volume with its TPM token (PCR 15 is still zero:
// nothing measured a volume in this boot).
func unsealTPM(t *testing.T, f *os.File, h *luks2.Header) {
	t.Helper()
	if !hasTPM() {
		return
	}
	tpm, err := tpm2.Open(tpm2.Device{})
	if err != nil {
		t.Fatal(err)
	}
	defer tpm.Close()
	vk, tok, err := enroll.Unlock(tpm, f, h, enroll.UnlockOptions{})
	if err != nil {
		t.Fatalf("TPM unlock: %v", err)
	}
	vk.Destroy()
	if got := tpm2.FormatPCRs(tok.Raw.PCRs); got != "7+15" {
		t.Errorf("TPM token binds PCRs %s, want 7+15", got)
	}
}

// checkRoot mounts the btrfs and checks initos.conf, the root and, with
// several disks, raid1.
func checkRoot(t *testing.T, devs []string) {
	t.Helper()
	top := t.TempDir()
	if err := mountTop(devs, top); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(top, 0)
	conf, err := os.ReadFile(filepath.Join(top, "initos.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"root=images/roots/host\n", "root.a=images/roots/host\n", "root.b=images/roots/host\n", "image=sha256:"} {
		if !strings.Contains(string(conf), w) {
			t.Errorf("initos.conf:\n%s\nmissing %q", conf, w)
		}
	}
	if b, err := os.ReadFile(filepath.Join(top, "images/roots/host/etc/os-release")); err != nil || string(b) != "ID=initos-test-root\n" {
		t.Errorf("root etc/os-release = %q, %v", b, err)
	}
	df, err := exec.Command("btrfs", "filesystem", "df", top).CombinedOutput()
	if err != nil {
		t.Fatalf("btrfs filesystem df: %v\n%s", err, df)
	}
	want := "Data, single"
	if len(devs) > 1 {
		want = "Data, RAID1"
	}
	if !strings.Contains(string(df), want) || len(devs) > 1 && !strings.Contains(string(df), "Metadata, RAID1") {
		t.Errorf("btrfs filesystem df:\n%s\nwant %s (and raid1 metadata with %d disks)", df, want, len(devs))
	}
}

// checkESPs reads every ESP back against the fixture.
func checkESPs(t *testing.T, sys System, names []string) {
	t.Helper()
	cfg := guestConfig(t)
	a := &Artifacts{}
	trusted, err := trustedCerts(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := loadUKI(cfg.UKI, trusted, a); err != nil {
		t.Fatal(err)
	}
	if err := loadModules(cfg.Modules, "", a); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		for _, n := range []int{PartESPA, PartESPB} {
			node, _ := sys.partitionNode(name, n)
			f, err := os.Open(node)
			if err != nil {
				t.Fatal(err)
			}
			size := attrInt(sys.Sys, "class", "block", filepath.Base(node), "size") * 512
			if err := checkESP(f, 0, size, 512, a.espFiles()); err != nil {
				t.Errorf("ESP %s: %v", node, err)
			}
			f.Close()
		}
	}
}

// checkEntries runs `initos efi boot list` and looks for InitOS A and B
// on ESP A and B of the first disk, first in BootOrder.
func checkEntries(t *testing.T, sys System, disk string) {
	t.Helper()
	out, err := exec.Command("/bin/initos", "efi", "boot", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("initos efi boot list: %v\n%s", err, out)
	}
	d, err := sys.describeDisk(disk)
	if err != nil {
		t.Fatal(err)
	}
	if err := probeDisk(d); err != nil {
		t.Fatal(err)
	}
	l := d.Content.Layout
	var nums []string
	for i, label := range []string{LabelA, LabelB} {
		p := l.Part(i + 1)
		want := "* " + label + "\tHD(" + string(rune('1'+i)) + ",GPT," + strings.ToLower(p.GUID) + ","
		line := ""
		for _, ln := range strings.Split(string(out), "\n") {
			if strings.Contains(ln, want) && strings.HasSuffix(ln, `\EFI\Linux\initos.efi`) {
				line = ln
			}
		}
		if line == "" {
			t.Errorf("initos efi boot list:\n%s\nno entry %q", out, want)
			continue
		}
		nums = append(nums, strings.TrimPrefix(line[:8], "Boot"))
	}
	if len(nums) == 2 && !strings.Contains(string(out), "BootOrder: "+nums[0]+","+nums[1]) {
		t.Errorf("initos efi boot list:\n%s\nBootOrder does not start with %s,%s", out, nums[0], nums[1])
	}
}
