//go:build !vmguest

package build_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"initos/boot"
	"initos/bootconfig"
	"initos/build"
	"initos/internal/bootdisk"
	"initos/internal/bootdisk/report"
	bt "initos/internal/buildtest"
	"initos/internal/testenv"
	"initos/internal/vmtest"
	"initos/tpm2"
)

// arm64Extra are the modules the arm64 test image carries beyond the
// early ones, for its modules image: dm-crypt with the volume's cipher
// (the aliases initos-init loads) and btrfs.
var arm64Extra = []string{"dm-crypt", "crypto-aes", "crypto-xts", "crypto-xts(aes)", "btrfs"}

// TestVMARM64 boots, on qemu's arm64 virt machine with AAVMF, Secure
// Boot on (the snakeoil db key signs the UKIs) and a swtpm TPM
// (tpm-tis-device), what Build made of an arm64 image of Debian's arm64
// kernel (buildtest.KernelLayer) with the aa64 stub and an arm64
// initos-init. A first boot (bootdisk.EnrollARM64, an arm64 enrollinit
// UKI signed by the same keys) enrolls the LUKS2 volume to the TPM with
// the default policy and binds it; the second boots the production UKI:
// initos-init loads arm64's early modules (tpm_tis among them) from its
// initrd, mounts the modules image through dm-verity with the root hash
// of its signed config, unseals the volume's key from the TPM (signed
// PCR 11 + PCR 7 + PCR 15), checks the binding, opens it with dm-crypt,
// mounts btrfs and switches root into an arm64 test root whose init (the
// arm64 rootinit, a static Go binary) reports what it sees.
func TestVMARM64(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM twice")
	}
	for _, tool := range []string{"mkfs.vfat", "mcopy", "mkfs.btrfs", "swtpm"} {
		testenv.Tool(t, tool)
	}
	testenv.RequireRoot(t)
	k, err := vmtest.FindKernelArch(vmtest.ArchARM64)
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	sb := bootdisk.Snakeoil(t)
	dir := t.TempDir()
	m, uki, modImg := buildARM64(t, k, dir, sb)
	vol := bootdisk.NewVolume(0, 3, "0e6b7a3c-5d4f-4e2a-8b1c-9a8f7e6d5c4b", "arm64")
	disk := arm64Disk(t, dir, vol, uki, m, modImg)
	root := filepath.Join(dir, "root.btrfs")
	rootInit, err := bootdisk.RootInitARM64()
	if err != nil {
		t.Fatal(err)
	}
	conf, err := json.Marshal(report.Config{Name: "arm64", LUKS: []string{"/dev/vda3"}, PCRSig: string(bootdisk.Section(uki, ".pcrsig"))})
	if err != nil {
		t.Fatal(err)
	}
	files := bootdisk.RootFiles(rootInit, map[string][]byte{report.ConfigPath: conf})
	if err := bootdisk.BuildRoot(context.Background(), []string{root}, 64, bootdisk.RootSpec{Files: files, Arch: "arm64"}); err != nil {
		t.Fatal(err)
	}
	vm := vmtest.New(t, vmtest.Config{Arch: vmtest.ArchARM64, Firmware: vmtest.AAVMFSecureBoot(), TPM: true, Disks: []vmtest.Disk{{Path: disk.Path}}})
	d := &bootdisk.Disk{Path: vm.Machine.DiskPath(0), Parts: disk.Parts}
	ctx, cancel := context.WithTimeout(context.Background(), scaled(6*time.Minute))
	res, err := bootdisk.EnrollARM64(ctx, vm.Machine, d, 1, k, report.EnrollPlan{Volumes: []report.EnrollVolume{{Device: "/dev/vda3", Pass: string(vol.Pass), Bind: true}}}, sb)
	cancel()
	if err != nil {
		if res != nil {
			t.Logf("console:\n%s", res.Console)
		}
		t.Fatal(err)
	}
	t.Logf("arm64 enrollment boot took %v", res.Elapsed.Round(time.Second))
	if err := vol.SaveHeader([]*bootdisk.Disk{d}); err != nil {
		t.Fatal(err)
	}
	if err := d.Install(3, vol, root); err != nil {
		t.Fatal(err)
	}
	if err := d.PutFile(1, "EFI/BOOT/BOOTAA64.EFI", uki); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), scaled(8*time.Minute))
	defer cancel()
	if res, err = vm.Machine.Boot(ctx, vmtest.BootSpec{}); err != nil {
		if res != nil {
			t.Logf("console:\n%s", res.Console)
		}
		t.Fatal(err)
	}
	checkARM64Boot(t, res.Console, k, m, uki, vol)
	t.Logf("arm64 boot to the root's init took %v", res.Elapsed.Round(time.Second))
}

// buildARM64 runs Build on an arm64 image of kernel k with an arm64
// initos-init; it returns the manifest, the UKI and the modules image.
func buildARM64(t *testing.T, k vmtest.Kernel, dir string, sb *bootdisk.SecureBootKey) (*build.Manifest, []byte, []byte) {
	bin, err := bootdisk.InitosInitARM64()
	if err != nil {
		t.Fatal(err)
	}
	init := filepath.Join(dir, "initos-init")
	if err := os.WriteFile(init, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := bootconfig.New()
	cfg.FailureTimeoutSec = 1
	opts := build.Options{Source: bt.WriteImageArch(t, "arm64", bt.KernelLayer(t, k, "arm64", arm64Extra...)), OutDir: filepath.Join(dir, "out"),
		Init: init, Stub: vmtest.StubARM64(), Cmdline: "console=ttyAMA0 panic=-1", Config: cfg,
		SigningKey: sb.Key, SigningCert: sb.Cert, PCRKey: bootdisk.PCRKey(), Epoch: bt.Time}
	m, err := build.Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	out := bt.ReadOut(t, opts.OutDir)
	return m, out[build.UKIFile], out[m.ModulesImage.File]
}

// arm64Disk makes the InitOS layout (ESP A with the UKI and the modules
// image, ESP B, the LUKS2 volume vol's header).
func arm64Disk(t *testing.T, dir string, vol *bootdisk.Volume, uki []byte, m *build.Manifest, modImg []byte) *bootdisk.Disk {
	disk, err := bootdisk.NewDisk(filepath.Join(dir, "disk.img"), []bootdisk.Part{
		{Name: "InitOS ESP A", Type: bootdisk.TypeESP, MiB: 64}, {Name: "InitOS ESP B", Type: bootdisk.TypeESP, MiB: 32},
		{Name: "InitOS LUKS", Type: bootdisk.TypeLUKS, MiB: 16 + 64},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vol.Format([]*bootdisk.Disk{disk}); err != nil {
		t.Fatal(err)
	}
	err = disk.FormatESP(1, "ESP-A", map[string][]byte{"EFI/Linux/initos.efi": uki, m.ModulesImage.ESPPath: modImg})
	if err != nil {
		t.Fatal(err)
	}
	return disk
}

// checkARM64Boot checks the console of the production boot: the steps of
// initos-init, the TPM unseal, and the arm64 root's report.
func checkARM64Boot(t *testing.T, console []byte, k vmtest.Kernel, m *build.Manifest, uki []byte, vol *bootdisk.Volume) {
	for _, want := range []string{
		fmt.Sprintf("modules: %s verified by dm-verity (root hash %s)", m.ModulesImage.ESPPath, m.ModulesImage.RootHash),
		"unlock: volume " + vol.UUID + ": the TPM unsealed its key, checking its binding",
		"unlock: volume " + vol.UUID + ": bound to this machine",
		"unlock: volume " + vol.UUID + " open as /dev/mapper/luks-" + vol.UUID + ", measured into PCR 15",
	} {
		if !bytes.Contains(console, []byte(want)) {
			t.Errorf("console lacks %q", want)
		}
	}
	r := bootdisk.RootReport(t, console)
	root := r.Mounts["/"]
	if r.Name != "arm64" || r.Release != k.Version || root.FSType != "btrfs" || root.Root != "/"+bootdisk.StoreDir+"/roots/host" || root.Source != "/dev/mapper/luks-"+vol.UUID {
		t.Errorf("root %q on %s: / = %+v, want the arm64 root store/roots/host on btrfs in /dev/mapper/luks-%s, kernel %s", r.Name, r.Release, root, vol.UUID, k.Version)
	}
	if mods := r.Mounts["/usr/lib/modules/"+k.Version]; mods.FSType != "squashfs" || !r.ModulesDep {
		t.Errorf("modules image in the root: %+v (modules.dep %v), want squashfs at /usr/lib/modules/%s", mods, r.ModulesDep, k.Version)
	}
	want11, err := tpm2.PredictPCR11(bytes.NewReader(uki), boot.PhaseEnterInitrd, boot.PhaseLeaveInitrd)
	if err != nil {
		t.Fatal(err)
	}
	if r.PCRs[11] != hex.EncodeToString(want11) {
		t.Errorf("PCR 11 in the root = %s, want %x (the UKI as systemd-stub measured it, enter-initrd, leave-initrd)", r.PCRs[11], want11)
	}
	if p7 := r.PCRs[7]; p7 == "" || p7 == strings.Repeat("0", 64) {
		t.Errorf("PCR 7 in the root = %q, want AAVMF's Secure Boot measurements", p7)
	}
	if len(r.Unseal) != 1 || !strings.HasPrefix(r.Unseal[0], "refused: ") {
		t.Errorf("unseal from the root = %q, want refused (PCR 11 moved on to leave-initrd)", r.Unseal)
	}
}
