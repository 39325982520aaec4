//go:build !vmguest

package boot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"initos/internal/bootdisk"
	"initos/internal/bootdisk/report"
	"initos/internal/testenv"
	"initos/internal/vmtest"
	"initos/tpm2"
)

func sha256Sum(b []byte) []byte { d := sha256.Sum256(b); return d[:] }

// TestVMBoot (tier 3) boots initos-init in a signed UKI under OVMF with
// Secure Boot (Debian's snakeoil keys), a swtpm and Debian's kernel, on
// one machine with two disks (see vmFixture), through every case of the
// issue's proof list. Boot 1 enrolls the TPM tokens and bindings
// (bootdisk.Enroll: a small init in a UKI signed like the real one);
// then each subtest sets the disks and boots the production UKI from
// ESP A. Then the control plane's proof (controlProof: three boots), the
// A/B upgrades (abUpgrade), and the fleet rollout (fleetRun: two clones of
// the machine made before the A/B run, booted at once).
func TestVMBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("tier 3: eleven OVMF boots under TCG")
	}
	testenv.RequireRoot(t)
	for _, tool := range []string{"mksquashfs", "mkfs.vfat", "mmd", "mcopy", "mkfs.btrfs", "btrfs", "openssl"} {
		testenv.Tool(t, tool)
	}
	k, err := vmtest.FindKernel()
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	f := newVMFixture(t, k)
	f.setVolume(0, f.g0, f.roots["raid1"][0])
	f.setVolume(1, f.g1, f.roots["raid1"][1])
	vm := vmtest.New(t, vmtest.Config{
		Firmware: vmtest.OVMFSecureBoot(), TPM: true,
		Disks: []vmtest.Disk{{Path: f.disks[0].Path}, {Path: f.disks[1].Path}},
	})
	f.useMachine(vm.Machine)
	ctx, cancel := context.WithTimeout(context.Background(), vmTimeout(6*time.Minute))
	res, err := bootdisk.Enroll(ctx, vm.Machine, f.disks[0], 1, k, f.enrollPlan(), f.sb)
	cancel()
	if err != nil {
		if res != nil {
			t.Logf("console:\n%s", tail(res.Console, 60))
		}
		t.Fatal(err)
	}
	t.Logf("enrollment boot took %v", res.Elapsed.Round(time.Second))
	f.afterEnroll()
	for _, c := range vmCases(f) {
		t.Run(c.name, func(t *testing.T) {
			c.setup()
			if f.restore != nil {
				defer func() { f.restore(); f.restore = nil }()
			}
			res := bootVM(t, vm)
			c.check(t, res)
		})
	}
	f.controlProof(t, vm)
	fleet := f.prepareFleet(t, vm) // clones of the machine before the A/B run
	t.Run("AB upgrade", func(t *testing.T) { f.abUpgrade(t, vm) })
	t.Run("fleet", fleet.run)
}

// vmCase is one boot of the machine.
type vmCase struct {
	name  string
	setup func()
	check func(t *testing.T, res *vmtest.Result)
}

func vmCases(f *vmFixture) []vmCase {
	single := func(root string, v *bootdisk.Volume) func() {
		return func() { f.setSecondDisk(false); f.setVolume(0, v, f.roots[root][0]) }
	}
	return []vmCase{
		{"good boot, raid1 over two LUKS volumes", func() {
			f.setSecondDisk(true)
			f.setVolume(0, f.g0, f.roots["raid1"][0])
			f.setVolume(1, f.g1, f.roots["raid1"][1])
		}, f.checkGoodBoot},
		{"Secure Boot off", f.secureBootOff, failsWith(`unlock: volume ` + f.g0.UUID + ` \(/dev/vda3\): .*PCR 7 mismatch: expected [0-9a-f]{64}, actual [0-9a-f]{64} \(Secure Boot is off\)`)},
		{"tampered modules image", f.tamperModules, failsWith(`modules: modules image initos/modules-.*\.sqfs fails verification: dm-verity refused a block`)},
		{"substituted LUKS volume", single("attacker", f.evil), f.checkSubstituted},
		{"initos.conf missing", single("no-conf", f.g0), failsWith(`root: initos.conf missing in the top level of the btrfs filesystem on /dev/mapper/luks-` + f.g0.UUID)},
		{"initos.conf malformed", single("bad-conf", f.g0), failsWith(`root: initos.conf on /dev/mapper/luks-` + f.g0.UUID + `: bad host-root config: line 2: key "root" repeated`)},
		{"root subvolume missing", single("no-subvol", f.g0), failsWith(`root: root subvolume store/roots/gone \(slot "a", from initos.conf\): missing in the top level`)},
	}
}

// bootVM boots the machine's disks once.
func bootVM(t *testing.T, vm *vmtest.VM) *vmtest.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), vmTimeout(6*time.Minute))
	defer cancel()
	var live bytes.Buffer
	res, err := vm.Machine.Boot(ctx, vmtest.BootSpec{Console: &live})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("qemu: %s\nconsole:\n%s", res.CommandLine(), tail(res.Console, 80))
		}
	})
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	t.Logf("boot took %v", res.Elapsed.Round(time.Second))
	return res
}

func vmTimeout(d time.Duration) time.Duration {
	var f float64
	if _, err := fmt.Sscan(os.Getenv("INITOS_VMTEST_TIMEOUT_SCALE"), &f); err == nil && f > 0 {
		return time.Duration(float64(d) * f)
	}
	return d
}

func tail(b []byte, n int) string {
	lines := strings.Split(string(b), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// failsWith checks that the boot stopped with one FAILED line matching re,
// never reached a root, and rebooted.
func failsWith(re string) func(t *testing.T, res *vmtest.Result) {
	pattern := regexp.MustCompile(`\[ *[0-9.]+\] initos: FAILED: ` + re)
	return func(t *testing.T, res *vmtest.Result) {
		console := string(res.Console)
		if !pattern.MatchString(console) {
			t.Errorf("console has no failure line matching %q", pattern)
		}
		if n := strings.Count(console, "FAILED: "); n != 1 {
			t.Errorf("console has %d FAILED lines, want exactly one", n)
		}
		if strings.Contains(console, report.Marker) || strings.Contains(console, "ATTACKER ROOT BOOTED") {
			t.Errorf("a root's init ran after a failure")
		}
		if !strings.Contains(console, "rebooting in 1s") {
			t.Errorf("console lacks the reboot after the failure timeout")
		}
	}
}

// checkGoodBoot: the raid1 root's init ran and saw the modules image
// mounted, PCR 11 after leave-initrd and PCR 15 after both volumes,
// exactly as predicted, and could not unseal a disk key again.
func (f *vmFixture) checkGoodBoot(t *testing.T, res *vmtest.Result) {
	r := bootdisk.RootReport(t, res.Console)
	root := r.Mounts["/"]
	if r.Name != "genuine" || root.FSType != "btrfs" || root.Root != "/"+bootdisk.StoreDir+"/roots/host" || r.BtrfsDevices != 2 {
		t.Errorf("root %q: / = %+v with %d btrfs devices, want the genuine store/roots/host on a 2-device raid1", r.Name, root, r.BtrfsDevices)
	}
	mods := r.Mounts["/usr/lib/modules/"+f.kernel.Version]
	if mods.FSType != "squashfs" || !r.ModulesDep || !r.Firmware || r.Mounts["/usr/lib/firmware"].FSType != "squashfs" {
		t.Errorf("modules image: %+v (modules.dep %v, firmware %v), want squashfs at /lib/modules/%s and /lib/firmware", mods, r.ModulesDep, r.Firmware, f.kernel.Version)
	}
	want11, err := tpm2.PredictPCR11(bytes.NewReader(f.uki), PhaseEnterInitrd, PhaseLeaveInitrd)
	if err != nil {
		t.Fatal(err)
	}
	if r.PCRs[11] != hex.EncodeToString(want11) {
		t.Errorf("PCR 11 in the root = %s, want %x (the UKI, enter-initrd, leave-initrd)", r.PCRs[11], want11)
	}
	if want := expectedPCR15(t, f.g0, f.g1); r.PCRs[15] != want {
		t.Errorf("PCR 15 in the root = %s, want %s (both volumes measured as systemd-cryptsetup)", r.PCRs[15], want)
	}
	if len(r.Unseal) != 1 || !strings.HasPrefix(r.Unseal[0], "refused: ") || !strings.Contains(r.Unseal[0], "PCR") {
		t.Errorf("unseal from the root = %q, want refused by the PCR policy", r.Unseal)
	}
	for _, step := range []string{"early-modules", "measure", "esp", "modules", "coldplug", "unlock", "root"} {
		if !strings.Contains(string(res.Console), "initos: "+step+": done in ") {
			t.Errorf("console lacks step %s", step)
		}
	}
}

// checkSubstituted: the attacker's volume (same UUID, their key, their
// root, a TPM token they forged to our policy, our binding token copied)
// is unsealed by its forged token but refused by the binding; their root
// never runs.
func (f *vmFixture) checkSubstituted(t *testing.T, res *vmtest.Result) {
	failsWith(`unlock: volume `+f.g0.UUID+` \(/dev/vda3\): volume binding does not match`)(t, res)
	if !strings.Contains(string(res.Console), "unlock: volume "+f.g0.UUID+": the TPM unsealed its key, checking its binding") {
		t.Errorf("console: the forged token did not unseal before the binding refused the volume")
	}
}

// secureBootOff replaces the machine's variable store by an empty one:
// setup mode, Secure Boot off, PCR 7 different; restored afterwards.
func (f *vmFixture) secureBootOff() {
	t := f.t
	f.setSecondDisk(true)
	f.setVolume(0, f.g0, f.roots["raid1"][0])
	f.setVolume(1, f.g1, f.roots["raid1"][1])
	vars := f.machineVars
	saved, err := os.ReadFile(vars)
	if err != nil {
		t.Fatal(err)
	}
	empty, err := os.ReadFile(filepath.Join(filepath.Dir(vmtest.OVMF().Vars), "OVMF_VARS_4M.fd"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vars, empty, 0o644); err != nil {
		t.Fatal(err)
	}
	f.restore = func() { os.WriteFile(vars, saved, 0o644) }
}

// tamperModules flips one byte of the modules image on ESP A, in its
// first block (which the squashfs mount reads: that first read fails
// verification).
func (f *vmFixture) tamperModules() {
	bad := bytes.Clone(f.modules.Data)
	bad[2048] ^= 0x40
	if err := f.disks[0].PutFile(1, f.modules.Info.File, bad); err != nil {
		f.t.Fatal(err)
	}
	f.restore = func() { f.disks[0].PutFile(1, f.modules.Info.File, f.modules.Data) }
}
