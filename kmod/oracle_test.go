package kmod

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"initos/internal/testenv"

	"github.com/google/go-cmp/cmp"
)

// debianModulesDir returns the module directory of the installed Debian
// kernel (linux-image-amd64), the one InitOS boots. It is never the
// running kernel's: that one may have no modules at all.
func debianModulesDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("INITOS_VMTEST_MODULES"); d != "" {
		return d
	}
	dirs, _ := filepath.Glob("/lib/modules/*/kernel/drivers/md/dm-verity.ko*")
	if len(dirs) == 0 {
		testenv.Missing(t, "no /lib/modules/*/kernel/drivers/md/dm-verity.ko* (Debian kernel modules: linux-image-amd64)")
	}
	slices.Sort(dirs)
	return strings.TrimSuffix(dirs[len(dirs)-1], "/kernel/drivers/md/"+filepath.Base(dirs[len(dirs)-1]))
}

// extraSoftdeps lists the modules Resolve adds on purpose beyond modprobe
// (kmod 30 honours only the first "softdep" line of a module; see doc.go).
var extraSoftdeps = map[string][]string{
	"btrfs": {"sha256_ssse3", "xxhash_generic"},
}

// oracleNames runs modprobe --show-depends and returns the module names
// it would load ("insmod PATH") or finds built in ("builtin NAME").
func oracleNames(t *testing.T, dir, name string) []string {
	t.Helper()
	root, version := filepath.Dir(filepath.Dir(dir)), filepath.Base(dir)
	if filepath.Base(filepath.Dir(dir)) != "modules" {
		t.Fatalf("module directory %s is not DIR/modules/VERSION: modprobe -d cannot read it", dir)
	}
	root = filepath.Dir(root)
	out := testenv.Run(t, "modprobe", "--show-depends", "-d", root, "-S", version, name)
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "insmod":
			names = append(names, nameFromPath(f[1]))
		case len(f) == 2 && f[0] == "builtin":
			names = append(names, Normalize(f[1]))
		default:
			t.Fatalf("modprobe --show-depends %s: unexpected line %q", name, line)
		}
	}
	return names
}

func TestResolveMatchesModprobe(t *testing.T) {
	dir := debianModulesDir(t)
	ix, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dm-verity", "dm-crypt", "btrfs", "squashfs", "vfat", "virtio_blk",
		"virtio_pci", "efivarfs", "overlay", "xts", "crypto-xts", "fs-btrfs", "loop", "dm-mod", "sha256_generic"} {
		t.Run(name, func(t *testing.T) {
			got, err := ix.Resolve(name)
			if err != nil {
				t.Fatal(err)
			}
			want := oracleNames(t, dir, name)
			if base := strings.TrimPrefix(name, "fs-"); extraSoftdeps[base] != nil {
				want = append(want, extraSoftdeps[base]...)
			}
			var names []string
			for _, m := range got {
				names = append(names, m.Name)
			}
			if diff := cmp.Diff(want, names, cmp.Transformer("sort", func(s []string) []string {
				return slices.Sorted(slices.Values(s))
			})); diff != "" {
				t.Errorf("Resolve(%q) module set differs from modprobe --show-depends (-modprobe +Resolve):\n%s", name, diff)
			}
			checkOrder(t, ix, got)
		})
	}
}

// checkOrder verifies every module comes after its hard and soft dependencies.
func checkOrder(t *testing.T, ix *Index, mods []Module) {
	t.Helper()
	pos := make(map[string]int)
	for i, m := range mods {
		if _, dup := pos[m.Name]; dup {
			t.Errorf("module %s listed twice", m.Name)
		}
		pos[m.Name] = i
		if m.Builtin != (m.Path == "") {
			t.Errorf("module %+v: Builtin and Path disagree", m)
		}
		if !m.Builtin {
			if _, err := os.Stat(filepath.Join(ix.Dir(), m.Path)); err != nil {
				t.Errorf("module %s: %v", m.Name, err)
			}
		}
	}
	for i, m := range mods {
		before := ix.deps[m.Name].deps
		for _, s := range ix.softPre[m.Name] {
			before = append(before, ix.lookup(s)...)
		}
		for _, d := range before {
			if j, ok := pos[d]; ok && j > i {
				t.Errorf("module %s (#%d) listed before its dependency %s (#%d)", m.Name, i, d, j)
			} else if !ok && slices.Contains(ix.deps[m.Name].deps, d) {
				t.Errorf("module %s: dependency %s missing", m.Name, d)
			}
		}
	}
}
