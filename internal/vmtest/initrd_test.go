package vmtest

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"initos/cpio"
	"initos/initramfs"
	"initos/internal/vmtest/plan"
	"initos/kmod"
)

// readInitrd returns the entries of an initramfs: name -> mode and contents.
func readInitrd(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := initramfs.NewReader(f)
	got := map[string]string{}
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		switch h.Mode & cpio.TypeMask {
		case cpio.TypeDir:
			got[h.Name] = "dir"
		case cpio.TypeChar:
			got[h.Name] = "char " + string(rune('0'+h.RDevMajor)) + ":" + string(rune('0'+h.RDevMinor))
		case cpio.TypeSymlink:
			got[h.Name] = "-> " + h.Linkname
		default:
			got[h.Name] = string(data)
		}
	}
}

func TestWriteInitrd(t *testing.T) {
	src := t.TempDir()
	mods, pkg := filepath.Join(src, "modules"), filepath.Join(src, "pkg")
	writeFile(t, filepath.Join(mods, "modules.dep"), "kernel/a.ko:\nkernel/b.ko: kernel/a.ko\n")
	writeFile(t, filepath.Join(mods, "kernel/a.ko"), "module a")
	writeFile(t, filepath.Join(mods, "kernel/b.ko"), "module b")
	writeFile(t, filepath.Join(pkg, "testdata/sub/x.txt"), "fixture")
	if err := os.Symlink("sub/x.txt", filepath.Join(pkg, "testdata/link")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, "extra"), "extra file")
	img := &guestImage{
		kernel: Kernel{Version: "test-release", ModulesDir: mods},
		runner: []byte("runner"), test: []byte("test binary"), pkgDir: pkg,
		files: map[string]string{"/etc/extra": filepath.Join(src, "extra")},
		load:  []kmod.Module{{Name: "a", Path: "kernel/a.ko"}, {Name: "bi", Builtin: true}, {Name: "b", Path: "kernel/b.ko", Optional: true}},
		ship:  []kmod.Module{{Name: "a", Path: "kernel/a.ko"}},
		plan:  plan.Plan{Binary: guestBinary},
	}
	dst := filepath.Join(t.TempDir(), "initrd.img")
	if err := writeInitrd(dst, img); err != nil {
		t.Fatal(err)
	}
	got := readInitrd(t, dst)
	var p plan.Plan
	if err := json.Unmarshal([]byte(got["vmtest/plan.json"]), &p); err != nil {
		t.Fatalf("plan.json: %v", err)
	}
	delete(got, "vmtest/plan.json")
	want := map[string]string{
		"init": "runner", "dev": "dir", "dev/console": "char 5:1",
		"proc": "dir", "sys": "dir", "tmp": "dir", "run": "dir", "etc": "dir", "etc/extra": "extra file",
		"vmtest": "dir", "vmtest/test": "test binary", "vmtest/pkg": "dir",
		"vmtest/pkg/testdata": "dir", "vmtest/pkg/testdata/sub": "dir",
		"vmtest/pkg/testdata/sub/x.txt": "fixture", "vmtest/pkg/testdata/link": "-> sub/x.txt",
		"lib": "dir", "lib/modules": "dir", "lib/modules/test-release": "dir",
		"lib/modules/test-release/modules.dep": "kernel/a.ko:\nkernel/b.ko: kernel/a.ko\n",
		"lib/modules/test-release/kernel":      "dir",
		"lib/modules/test-release/kernel/a.ko": "module a", "lib/modules/test-release/kernel/b.ko": "module b",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("writeInitrd() entries diff (-want +got):\n%s", diff)
	}
	wantMods := []plan.Module{{Path: "/lib/modules/test-release/kernel/a.ko"}, {Path: "/lib/modules/test-release/kernel/b.ko", Optional: true}}
	if diff := cmp.Diff(wantMods, p.Modules); diff != "" {
		t.Errorf("plan modules diff (-want +got):\n%s", diff)
	}

	img.files = map[string]string{"/etc/missing": filepath.Join(src, "missing")}
	img.plan = plan.Plan{}
	if err := writeInitrd(dst, img); err == nil {
		t.Errorf("writeInitrd(missing Config.Files source) = nil error, want one")
	}
}
