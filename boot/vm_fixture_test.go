//go:build !vmguest

package boot

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"initos/bootconfig"
	"initos/enroll"
	"initos/internal/bootdisk"
	"initos/internal/bootdisk/report"
	"initos/internal/vmtest"
	"initos/luks2"
	"initos/tpm2"
)

// vmFixture is the test machine's disks and what goes on them.
type vmFixture struct {
	t           *testing.T
	dir         string
	kernel      vmtest.Kernel
	sb          *bootdisk.SecureBootKey
	modules     *bootdisk.ModulesImage
	uki         []byte // the production UKI, signed
	disks       []*bootdisk.Disk
	g0, g1      *bootdisk.Volume    // genuine volumes: disk 0 and disk 1, partition 3
	evil        *bootdisk.Volume    // the attacker's: disk 1, partition 4 (a Linux partition: never opened)
	roots       map[string][]string // root filesystem images by variant
	ends        [][]byte            // disk 1's first and last MiB (its GPT)
	machineVars string              // the machine's UEFI variable store
	restore     func()              // undoes a case's change of the machine, if set
}

// Sizes of the test layout, MiB.
const (
	vmESPMiB   = 64
	vmLUKSMiB  = 16 + 96
	vmRootMiB  = 96 // a raid1 member
	vmSmallMiB = 64 // a single-device root
	vmEvilMiB  = 24
)

// newVMFixture builds the artifacts and the two disks: disk 0 holds ESP A
// (the UKI and the modules image), ESP B and a LUKS volume; disk 1 two
// ESPs (empty), a LUKS volume and the attacker's header in partition 4.
func newVMFixture(t *testing.T, k vmtest.Kernel) *vmFixture {
	f := &vmFixture{t: t, dir: t.TempDir(), kernel: k, sb: bootdisk.Snakeoil(t), roots: map[string][]string{}}
	var err error
	if f.modules, err = bootdisk.BuildModulesImage(k); err != nil {
		t.Fatal(err)
	}
	cfg := bootconfig.New()
	cfg.BuildID, cfg.FailureTimeoutSec, cfg.ModulesImage = "boot VM test", 1, f.modules.Info
	initrd, err := bootdisk.Initrd(k, cfg, bootdisk.VMModules)
	if err != nil {
		t.Fatal(err)
	}
	if f.uki, err = bootdisk.UKI(k.Image, initrd, "console=ttyS0 panic=-1 no_timer_check quiet", k.Version, f.sb); err != nil {
		t.Fatal(err)
	}
	f.g0 = bootdisk.NewVolume(0, 3, "3f2a1c4e-8f1b-4a53-9b7e-0c1d2e3f4a5b", "genuine 0")
	f.g1 = bootdisk.NewVolume(1, 3, "7c9e6679-7425-40de-944b-e07fc1f90ae7", "genuine 1")
	f.evil = bootdisk.NewVolume(1, 4, f.g0.UUID, "attacker") // same UUID as the genuine volume
	f.makeDisks()
	f.makeRoots()
	return f
}

func (f *vmFixture) makeDisks() {
	t := f.t
	esp := func(name string) bootdisk.Part {
		return bootdisk.Part{Name: name, Type: bootdisk.TypeESP, MiB: vmESPMiB}
	}
	luks := bootdisk.Part{Name: "InitOS LUKS", Type: bootdisk.TypeLUKS, MiB: vmLUKSMiB}
	layouts := [][]bootdisk.Part{
		{esp(NameESPA), esp(NameESPB), luks},
		{esp(NameESPA), esp(NameESPB), luks, {Name: "scratch", Type: bootdisk.TypeLinux, MiB: vmEvilMiB}},
	}
	for i, parts := range layouts {
		d, err := bootdisk.NewDisk(filepath.Join(f.dir, "disk"+strconv.Itoa(i)+".img"), parts)
		if err != nil {
			t.Fatal(err)
		}
		f.disks = append(f.disks, d)
	}
	err := f.disks[0].FormatESP(1, "ESP-A", map[string][]byte{
		"EFI/BOOT/BOOTX64.EFI": f.uki, "EFI/Linux/initos.efi": f.uki, f.modules.Info.File: f.modules.Data,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []*bootdisk.Volume{f.g0, f.g1, f.evil} {
		if _, err := v.Format(f.disks); err != nil {
			t.Fatal(err)
		}
	}
}

// rootConfig is the test root's own config: which volumes the root tries
// to unseal again, with the UKI's .pcrsig as an attacker would.
func (f *vmFixture) rootConfig(name string) []byte {
	b, err := json.Marshal(report.Config{Name: name, LUKS: []string{"/dev/vda3"}, PCRSig: string(bootdisk.Section(f.uki, ".pcrsig"))})
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// makeRoots builds the root filesystem images of every scenario.
func (f *vmFixture) makeRoots() {
	t := f.t
	init, err := bootdisk.RootInit()
	if err != nil {
		t.Fatal(err)
	}
	genuine := bootdisk.RootFiles(init, map[string][]byte{report.ConfigPath: f.rootConfig("genuine")})
	variants := []struct {
		name  string
		n     int64
		files map[string][]byte
		conf  func(rel string) string
	}{
		{"raid1", 2, genuine, nil},
		{"attacker", 1, bootdisk.RootFiles(init, map[string][]byte{report.ConfigPath: f.rootConfig("attacker")}), nil},
		{"no-conf", 1, genuine, func(string) string { return "" }},
		{"bad-conf", 1, genuine, func(rel string) string { return "root=" + rel + "\nroot=again\n" }},
		{"no-subvol", 1, genuine, func(string) string { return "root.a=store/roots/gone\nroot.b=store/roots/gone\n" }},
	}
	for _, v := range variants {
		var imgs []string
		size := int64(vmSmallMiB)
		if v.n > 1 {
			size = vmRootMiB
		}
		for i := int64(0); i < v.n; i++ {
			imgs = append(imgs, filepath.Join(f.dir, v.name+strconv.FormatInt(i, 10)+".btrfs"))
		}
		if err := bootdisk.BuildRoot(context.Background(), imgs, size, bootdisk.RootSpec{Files: v.files, Conf: v.conf}); err != nil {
			t.Fatalf("root %s: %v", v.name, err)
		}
		f.roots[v.name] = imgs
	}
}

// enrollPlan is what the first boot enrolls: the genuine volumes with a
// binding, the attacker's with a TPM token forged to our policy (anyone
// who can run code with this TPM can make one) and no binding.
func (f *vmFixture) enrollPlan() report.EnrollPlan {
	return report.EnrollPlan{Volumes: []report.EnrollVolume{
		{Device: "/dev/vda3", Pass: string(f.g0.Pass), Bind: true},
		{Device: "/dev/vdb3", Pass: string(f.g1.Pass), Bind: true},
		{Device: "/dev/vdb4", Pass: string(f.evil.Pass)},
	}}
}

// useMachine points the disks at the machine's copies.
func (f *vmFixture) useMachine(m *vmtest.Machine) {
	for i, d := range f.disks {
		f.disks[i] = &bootdisk.Disk{Path: m.DiskPath(i), Parts: d.Parts}
	}
	f.machineVars = m.VarsPath()
}

// afterEnroll keeps the enrolled headers, gives the attacker's header a
// copy of the genuine binding token (the best an attacker can do), and
// puts the production UKI back on the ESP.
func (f *vmFixture) afterEnroll() {
	t := f.t
	for _, v := range []*bootdisk.Volume{f.g0, f.g1, f.evil} {
		if err := v.SaveHeader(f.disks); err != nil {
			t.Fatal(err)
		}
	}
	f.copyBinding()
	d1 := f.disks[1]
	fi, err := os.Stat(d1.Path)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := bootdisk.ReadRegion(d1.Path, 0, 1<<20)
	last, _ := bootdisk.ReadRegion(d1.Path, fi.Size()-1<<20, 1<<20)
	f.ends = [][]byte{first, last}
	if err := f.disks[0].PutFile(1, "EFI/BOOT/BOOTX64.EFI", f.uki); err != nil {
		t.Fatal(err)
	}
}

// copyBinding adds the genuine volume's binding token to the attacker's
// header (in memory: f.evil.header).
func (f *vmFixture) copyBinding() {
	t := f.t
	gh, err := luks2.ReadHeader(bytes.NewReader(f.g0.Header))
	if err != nil {
		t.Fatal(err)
	}
	var raw json.RawMessage
	ids, toks := gh.Tokens()
	for i, id := range ids {
		if toks[i] != nil && toks[i].Type == enroll.BindingTokenType {
			raw = gh.Meta.Tokens[id]
		}
	}
	if raw == nil {
		t.Fatal("the genuine volume has no binding token after enrollment")
	}
	dev := &bootdisk.MemDevice{B: f.evil.Header}
	eh, err := luks2.ReadHeader(dev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eh.AddToken(dev, -1, raw); err != nil {
		t.Fatal(err)
	}
}

// setVolume writes volume v's header into disk, partition 3, and the
// root image img encrypted with v's key after it.
func (f *vmFixture) setVolume(disk int, v *bootdisk.Volume, img string) {
	if err := f.disks[disk].Install(3, v, img); err != nil {
		f.t.Fatal(err)
	}
}

// setSecondDisk gives disk 1 its GPT back (raid1) or zeroes it (single:
// the disk has no partition table, so no LUKS partition).
func (f *vmFixture) setSecondDisk(present bool) {
	t := f.t
	d := f.disks[1]
	fi, err := os.Stat(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	first, last := f.ends[0], f.ends[1]
	if !present {
		first, last = make([]byte, len(first)), make([]byte, len(last))
	}
	if bootdisk.WriteRegion(d.Path, 0, first) != nil || bootdisk.WriteRegion(d.Path, fi.Size()-1<<20, last) != nil {
		t.Fatal("rewrite disk 1's ends")
	}
}

// expectedPCR15 is PCR 15 after the volumes opened in order, as
// systemd-cryptsetup measures them.
func expectedPCR15(t *testing.T, vols ...*bootdisk.Volume) string {
	pcr := make([]byte, 32)
	for _, v := range vols {
		d, err := enroll.VolumeDigest(tpm2.SHA256, volumeName(v.UUID), v.UUID, v.Key)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256Sum(append(pcr, d...))
		pcr = sum
	}
	return hex.EncodeToString(pcr)
}
