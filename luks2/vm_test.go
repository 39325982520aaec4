package luks2

import (
	"crypto/aes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/crypto/xts"

	"initos/internal/testenv"
	"initos/internal/vmtest"
)

// vmPassphrase unlocks the disk TestVM formats for the guest.
const vmPassphrase = "initos-vm"

// TestVM formats a disk image on the host with our code, builds the initos
// CLI, and runs the guest tests (vm_guest_test.go) under qemu: this host's
// kernel has no device-mapper.
func TestVM(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if _, err := FormatFile(img, 48<<20, []byte(vmPassphrase), FormatOptions{Label: "vmtest", PBKDF: fastPBKDF["argon2id"]}); err != nil {
		t.Fatal(err)
	}
	theirs := cryptsetupDisk(t, dir)
	fsDisk := filepath.Join(dir, "fs.img")
	if _, err := FormatFile(fsDisk, 24<<20, []byte(vmPassphrase), FormatOptions{Label: "vmfs", PBKDF: fastPBKDF["pbkdf2"]}); err != nil {
		t.Fatal(err)
	}
	fatImg := filepath.Join(dir, "fat.img")
	// 4096-byte logical sectors: the mapping's crypt sector size.
	testenv.Run(t, "mkfs.vfat", "-S", "4096", "-C", fatImg, "4096")
	cli := filepath.Join(dir, "initos")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", cli, "initos/cmd/initos")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build initos: %v\n%s", err, out)
	}
	vmtest.Run(t, vmtest.Config{
		// xts and ecb back aes-xts-plain64 (aes and cbc are built in);
		// vfat mounts with codepage 437 and iocharset ascii by default.
		Modules: []string{"dm-crypt", "loop", "xts", "ecb", "vfat", "nls_cp437", "nls_ascii"},
		Disks:   []vmtest.Disk{{Path: img}, {Path: theirs}, {Path: fsDisk}},
		Files:   map[string]string{"/bin/initos": cli, vmFATImage: fatImg},
	})
}

// vmFATImage is the guest path of an empty FAT file system image (made on
// the host with mkfs.vfat) that the guest copies onto a mapping.
const vmFATImage = "/fat.img"

// vmDataOffset is where the guest reads (and writes) its test pattern,
// relative to the start of the decrypted device.
const vmDataOffset = 4096

// cryptsetupDisk formats a disk with cryptsetup (aes-xts-plain64, 4096-byte
// sectors) and stores vmPattern encrypted at vmDataOffset the way dm-crypt
// does for LUKS2 (XTS per 4096-byte sector, IV = the 512-byte sector
// number within the segment, no iv_large_sectors). The guest opens it with
// our dm table and must read the pattern back.
func cryptsetupDisk(t *testing.T, dir string) string {
	t.Helper()
	img := filepath.Join(dir, "theirs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 24<<20); err != nil {
		t.Fatal(err)
	}
	key := keyFile(t, vmPassphrase)
	args := append([]string{"luksFormat", "--type", "luks2", "--sector-size", "4096", "--key-file", key}, pbkdfArgs(fastPBKDF["argon2id"])...)
	if _, ok := cryptsetup(t, append(args, img)...); !ok {
		t.Fatal("cryptsetup luksFormat failed")
	}
	vk := dumpVolumeKey(t, img, key)
	h, err := ReadHeaderFile(img)
	if err != nil {
		t.Fatal(err)
	}
	seg := h.Meta.Segments["0"]
	c, err := xts.NewCipher(aes.NewCipher, vk)
	if err != nil {
		t.Fatal(err)
	}
	data := vmPattern()
	for off := 0; off < len(data); off += seg.SectorSize {
		rel := uint64(vmDataOffset + off)
		c.Encrypt(data[off:off+seg.SectorSize], data[off:off+seg.SectorSize], rel/512+uint64(seg.IVTweak))
	}
	f := openFileRW(t, img)
	if _, err := f.WriteAt(data, int64(uint64(seg.Offset)+vmDataOffset)); err != nil {
		t.Fatal(err)
	}
	return img
}

// vmPattern is 1 MiB of deterministic data.
func vmPattern() []byte {
	b := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{'l', 'u', 'k', 's'}).Read(b)
	return b
}
