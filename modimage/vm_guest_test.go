//go:build vmguest

package modimage

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"initos/dm"
	"initos/kmod"
	"initos/verity"
)

// TestGuestMountAndLoad opens the modules image (/dev/vda) through
// dm-verity, mounts it at MountPoint as the initrd does, and loads udf,
// which needs crc-itu-t: both come from the image, through modules.dep.
func TestGuestMountAndLoad(t *testing.T) {
	b, err := os.ReadFile(vmParamsPath)
	if err != nil {
		t.Fatal(err)
	}
	var p vmParams
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	const disk = "/dev/vda"
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := verity.ReadSuperblock(f, p.HashOffset)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	root, _ := hex.DecodeString(p.RootHash)
	r, err := sb.Result(p.HashOffset, root)
	if err != nil {
		t.Fatal(err)
	}
	node, err := dm.CreateDevice("initos-modules", "", true, dm.Verity{DataDevice: disk, HashDevice: disk,
		DataBlockSize: r.DataBlockSize, HashBlockSize: r.HashBlockSize, DataBlocks: r.DataBlocks,
		HashStartBlock: r.HashStartBlock, Algorithm: r.Hash, RootDigest: r.RootHash, Salt: r.Salt})
	if err != nil {
		t.Fatalf("dm.CreateDevice: %v", err)
	}
	defer dm.RemoveDevice("initos-modules")
	if err := unix.Mount(node, MountPoint, "squashfs", unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("mount %s on %s: %v", node, MountPoint, err)
	}
	defer unix.Unmount(MountPoint, 0)
	ix, err := kmod.Open(filepath.Join(MountPoint, ModulesPath(p.Release)))
	if err != nil {
		t.Fatalf("kmod.Open: %v", err)
	}
	if err := ix.LoadAll("udf"); err != nil {
		t.Fatalf("LoadAll(udf) from the modules image: %v", err)
	}
	mods, _ := os.ReadFile("/proc/modules")
	for _, m := range []string{"udf ", "crc_itu_t "} {
		if !strings.Contains(string(mods), "\n"+m) && !strings.HasPrefix(string(mods), m) {
			t.Errorf("/proc/modules has no %q after loading udf:\n%s", m, mods)
		}
	}
}
