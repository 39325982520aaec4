package boot

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"initos/bootconfig"
	"initos/btrfsioctl"
	"initos/internal/testenv"
	"initos/loop"
)

// btrfsDisk makes a btrfs filesystem on a loop device with subvolume
// roots/host holding an executable /sbin/init and, if conf is not "-",
// initos.conf in the top level; edit changes the tree before unmounting.
func btrfsDisk(t *testing.T, conf string, edit func(top string)) string {
	t.Helper()
	testenv.RequireRoot(t)
	mkfs := testenv.Tool(t, "mkfs.btrfs")
	img := filepath.Join(t.TempDir(), "btrfs.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 256<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-f", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.btrfs: %v\n%s", err, out)
	}
	l, err := loop.Attach(img, loop.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Detach(); l.Close() })
	top := filepath.Join(t.TempDir(), "top")
	os.Mkdir(top, 0o755)
	if out, err := exec.Command("mount", l.Path, top).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v\n%s", err, out)
	}
	defer exec.Command("umount", top).Run()
	os.MkdirAll(filepath.Join(top, "roots"), 0o755)
	if err := btrfsioctl.Create(filepath.Join(top, "roots/host")); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, filepath.Join(top, "roots/host"), map[string]string{"sbin/init": "#!/bin/true\n"})
	os.Chmod(filepath.Join(top, "roots/host/sbin/init"), 0o755)
	if conf != "-" {
		writeFiles(t, top, map[string]string{"initos.conf": conf})
	}
	if edit != nil {
		edit(top)
	}
	return l.Path
}

// rootBoot returns a Boot for the root step on dev (btrfs built in).
func rootBoot(t *testing.T, dev string) *Boot {
	b, _ := unlockBootNoDisks(t)
	b.Volumes = []*Volume{{UUID: uuid1, Mapper: dev, State: VolumeOpen}}
	t.Cleanup(func() { exec.Command("umount", b.paths.Sysroot).Run() })
	return b
}

func unlockBootNoDisks(t *testing.T) (*Boot, *fakeTPM) { return unlockBoot(t) }

// TestMountRoot (tier 1): the root step on a btrfs loop device: the slot's
// subvolume mounted, init and flags chosen by precedence.
func TestMountRoot(t *testing.T) {
	dev := btrfsDisk(t, "root=roots/other\nroot.a=roots/host\nrootflags=noatime\ninit=/sbin/init\n", func(top string) {
		btrfsioctl.Create(filepath.Join(top, "roots/other"))
	})
	b := rootBoot(t, dev)
	b.Slot = "a"
	if err := b.mountRoot(context.Background()); err != nil {
		t.Fatalf("mountRoot = %v", err)
	}
	if b.Root != "roots/host" || b.Init != "/sbin/init" {
		t.Errorf("root %q init %q, want roots/host, /sbin/init", b.Root, b.Init)
	}
	if _, err := os.Stat(filepath.Join(b.paths.Sysroot, "sbin/init")); err != nil {
		t.Errorf("the root is not mounted on %s: %v", b.paths.Sysroot, err)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if !strings.Contains(string(mounts), b.paths.Sysroot+" ") || !strings.Contains(string(mounts), "subvol=/roots/host") {
		t.Errorf("mountinfo has no %s with subvol=/roots/host", b.paths.Sysroot)
	}
}

// TestMountRootErrors (tier 1): each failure of the root step has its
// own message.
func TestMountRootErrors(t *testing.T) {
	tests := []struct {
		name, conf string
		edit       func(top string)
		setup      func(b *Boot)
		want       string
	}{
		{"initos.conf missing", "-", nil, nil, "initos.conf missing in the top level of the btrfs filesystem on"},
		{"initos.conf malformed", "root=/abs\n", nil, nil, `initos.conf on %DEV%: bad host-root config: root "/abs" is not a clean relative path`},
		{"initos.conf no slot root", "root.b=roots/host\n", nil, func(b *Boot) { b.Slot = "a" }, "bad host-root config: no root= line"},
		{"root subvolume missing", "root=roots/gone\n", nil, nil, `root subvolume roots/gone (slot "", from initos.conf): missing in the top level`},
		{"root not a subvolume", "root=roots/dir\n", func(top string) { os.MkdirAll(filepath.Join(top, "roots/dir"), 0o755) }, nil,
			"root subvolume roots/dir (slot \"\", from initos.conf): is a directory, not a btrfs subvolume"},
		{"init missing", "root=roots/host\ninit=/sbin/nope\n", nil, nil, "root subvolume roots/host: init /sbin/nope missing"},
		{"init not executable", "root=roots/host\ninit=/etc/x\n", func(top string) {
			writeFiles(t, filepath.Join(top, "roots/host"), map[string]string{"etc/x": "data"})
		}, nil, "init /etc/x is not an executable file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := btrfsDisk(t, tt.conf, tt.edit)
			b := rootBoot(t, dev)
			b.Config = bootconfig.New()
			if tt.setup != nil {
				tt.setup(b)
			}
			err := b.mountRoot(context.Background())
			want := strings.ReplaceAll(tt.want, "%DEV%", dev)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("mountRoot = %v, want %q", err, want)
			}
		})
	}
}
