package boot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"initos/bootconfig"
	"initos/kmod"
	"initos/luks2"
)

// twoDiskScript is a disk with an ESP and a 24 MiB LUKS partition.
const luksDiskScript = `label: gpt
start=2048, size=4096, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="InitOS ESP A"
start=6144, size=49152, type=CA7D7CCB-63ED-4C53-861C-1742536059CC, name="InitOS LUKS"
`

// offsetDevice is a luks2.Device at an offset of a file.
type offsetDevice struct {
	f   *os.File
	off int64
}

func (d offsetDevice) ReadAt(p []byte, off int64) (int, error)  { return d.f.ReadAt(p, d.off+off) }
func (d offsetDevice) WriteAt(p []byte, off int64) (int, error) { return d.f.WriteAt(p, d.off+off) }

// luksDisk returns a 32 MiB disk image with a LUKS2 header of uuid in
// partition 2 (/dev/vda2 of fakeBlock... renamed: the disk is "vda").
func luksDisk(t *testing.T, uuid string) string {
	t.Helper()
	img := sfdiskImageSize(t, luksDiskScript, 32<<20)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = luks2.Format(offsetDevice{f, 6144 * 512}, []byte("pass"), luks2.FormatOptions{
		UUID: uuid, DataOffset: 2 << 20, PBKDF: luks2.PBKDF{Type: "pbkdf2", Hash: "sha256", Iterations: 1000},
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// unlockBoot returns a Boot ready for the unlock step on fake block
// devices: disks vda, vdb with LUKS volumes of the given UUIDs, a fake
// TPM holding their keys, dm-crypt built in, activation faked.
func unlockBoot(t *testing.T, uuids ...string) (*Boot, *fakeTPM) {
	t.Helper()
	b := stepBoot(t, "quiet", nil)
	b.Config = bootconfig.New()
	b.Config.Unlock.DeviceTimeoutSec = 1
	sysBlock := filepath.Join(b.paths.Sys, "class/block")
	ft := newFakeTPM()
	for i, uuid := range uuids {
		name := "vd" + string(rune('a'+i))
		data := luksDiskBytes(t, uuid)
		// The disk node needs its GPT, the partition node its LUKS2
		// header and keyslots (before the 2 MiB data offset).
		writeFiles(t, b.paths.Dev, map[string]string{name: string(data[:1<<20]), name + "2": string(data[6144*512 : 6144*512+2<<20])})
		writeFiles(t, sysBlock, map[string]string{name + "/size": "65536\n", name + "/" + name + "1/partition": "1\n", name + "/" + name + "2/partition": "2\n"})
		ft.keys[uuid] = []byte("key of " + uuid)
	}
	kdir := filepath.Join(t.TempDir(), "k")
	writeFiles(t, kdir, map[string]string{"modules.dep": "", "modules.builtin": "kernel/drivers/md/dm-crypt.ko\nkernel/fs/btrfs/btrfs.ko\n"})
	ix, err := kmod.Open(kdir)
	if err != nil {
		t.Fatal(err)
	}
	b.index, b.mods = ix, newModuleLoader(func(string) error { return nil })
	b.tpm = ft
	b.activate = func(v *Volume) (string, error) { return "/dev/mapper/" + v.Name, nil }
	return b, ft
}

// luksDisks caches the disk images by LUKS UUID (sfdisk and the keyslot
// cost a second each).
var luksDisks sync.Map

func luksDiskBytes(t *testing.T, uuid string) []byte {
	if b, ok := luksDisks.Load(uuid); ok {
		return b.([]byte)
	}
	data, err := os.ReadFile(luksDisk(t, uuid))
	if err != nil {
		t.Fatal(err)
	}
	luksDisks.Store(uuid, data)
	return data
}

const (
	uuid1 = "11111111-2222-4333-8444-555555555555"
	uuid2 = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
)

// TestUnlock: every volume is unsealed and its binding checked before the
// first one is measured into PCR 15 (after which no unseal can succeed);
// each is measured right after it opens.
func TestUnlock(t *testing.T) {
	b, ft := unlockBoot(t, uuid1, uuid2)
	if err := b.unlock(context.Background()); err != nil {
		t.Fatalf("unlock = %v", err)
	}
	want := []string{"unlock " + uuid1, "binding " + uuid1, "unlock " + uuid2, "binding " + uuid2,
		"measure " + uuid1 + " into 15", "measure " + uuid2 + " into 15"}
	if diff := cmp.Diff(want, ft.calls); diff != "" {
		t.Errorf("TPM calls (-want +got):\n%s", diff)
	}
	for _, v := range b.Volumes {
		if v.State != VolumeOpen || v.Mapper != "/dev/mapper/luks-"+v.UUID || v.key != nil {
			t.Errorf("volume %s: state %s mapper %s key wiped %v", v.UUID, v.State, v.Mapper, v.key == nil)
		}
	}
	// A second unlock in the same boot fails: PCR 15 moved.
	b2 := *b
	b2.Volumes = nil
	if err := b2.unlock(context.Background()); err == nil || !strings.Contains(err.Error(), "PCR 15 mismatch") {
		t.Errorf("second unlock = %v, want a PCR 15 mismatch", err)
	}
}

func TestUnlockErrors(t *testing.T) {
	mismatch := &PCRMismatchError{PCRs: []PCRMismatch{{PCR: 7, Expected: "aa", Actual: "bb"}}, Err: errors.New("policy")}
	tests := []struct {
		name  string
		setup func(b *Boot, ft *fakeTPM)
		want  string
	}{
		{"no tpm", func(b *Boot, ft *fakeTPM) { b.tpm = nil }, "no TPM: cannot unseal the key of volume " + uuid1},
		{"pcr 7", func(b *Boot, ft *fakeTPM) { ft.unlock[uuid1] = mismatch },
			"volume " + uuid1 + " (" + "vda2): PCR 7 mismatch: expected aa, actual bb (Secure Boot state unknown"},
		{"unbound", func(b *Boot, ft *fakeTPM) { ft.binding[uuid1] = ErrUnbound }, "volume " + uuid1},
		{"substituted", func(b *Boot, ft *fakeTPM) { ft.binding[uuid1] = errors.New("binding tag mismatch") }, "binding tag mismatch"},
		{"measure", func(b *Boot, ft *fakeTPM) { ft.measured = errors.New("TPM gone") }, "measure into PCR 15: TPM gone (closed again"},
		{"uuid not on disk", func(b *Boot, ft *fakeTPM) { b.Config.Unlock.UUIDs = []string{uuid1, uuid2} }, "volume not found: LUKS UUID " + uuid2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, ft := unlockBoot(t, uuid1)
			tt.setup(b, ft)
			err := b.unlock(context.Background())
			if err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), b.paths.Dev+"/", ""), tt.want) {
				t.Errorf("unlock = %v, want %q", err, tt.want)
			}
			for _, c := range ft.calls {
				if strings.HasPrefix(c, "measure") && tt.name != "measure" {
					t.Errorf("a failed unlock measured a volume: %q", ft.calls)
				}
			}
		})
	}
}

func TestUnlockAllowUnbound(t *testing.T) {
	b, ft := unlockBoot(t, uuid1)
	ft.binding[uuid1] = ErrUnbound
	b.Config.Unlock.AllowUnbound = true
	if err := b.unlock(context.Background()); err != nil {
		t.Errorf("unlock(unbound, allowed) = %v", err)
	}
	ft.binding[uuid1] = errors.New("binding tag mismatch")
	b2, ft2 := unlockBoot(t, uuid1)
	ft2.binding[uuid1] = errors.New("binding tag mismatch")
	b2.Config.Unlock.AllowUnbound = true
	if err := b2.unlock(context.Background()); err == nil {
		t.Errorf("unlock(wrong binding, unbound allowed) succeeded: only a missing binding is allowed")
	}
}

func TestUnlockNoVolume(t *testing.T) {
	b, _ := unlockBoot(t)
	err := b.unlock(context.Background())
	if err == nil || !strings.Contains(err.Error(), "volume not found: no partition of the InitOS LUKS type ca7d7ccb-63ed-4c53-861c-1742536059cc after 1s") {
		t.Errorf("unlock(no disk) = %v", err)
	}
}

func TestCryptModules(t *testing.T) {
	if got := cryptModules("aes-xts-plain64"); !cmp.Equal(got, []string{"crypto-aes", "crypto-xts", "crypto-xts(aes)"}) {
		t.Errorf("cryptModules = %q", got)
	}
}
