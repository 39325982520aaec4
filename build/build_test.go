package build

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"initos/authenticode"
	"initos/initrd"
	"initos/pecoff"
	"initos/squashfs"
)

// tree lists a squashfs image: path -> type and content.
func tree(t testing.TB, img []byte, size int64) map[string]string {
	t.Helper()
	r, err := squashfs.NewReader(bytes.NewReader(img), size)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	err = r.Walk(func(p string, in *squashfs.Inode) error {
		if in.UID != 0 || in.GID != 0 {
			t.Errorf("%s owned by %d:%d, want 0:0", p, in.UID, in.GID)
		}
		switch {
		case in.Mode.IsDir():
			out[p] = "dir"
		case in.Mode&fs.ModeSymlink != 0:
			out[p] = "-> " + in.Target
		default:
			c, err := r.Content(in)
			if err != nil {
				return err
			}
			b, err := io.ReadAll(c)
			out[p] = string(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBuildFromImage(t *testing.T) {
	src := writeImage(t, hostLayers(t)...)
	opts := options(t, src)
	m, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	out := readOut(t, opts.OutDir)
	var names []string
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	if want := []string{UKIFile, ManifestFile, "modules-" + rel10 + ".sqfs"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("Build() wrote %v, want %v", names, want)
	}
	got := tree(t, out["modules-"+rel10+".sqfs"], m.ModulesImage.DataSize)
	want := map[string]string{
		".": "dir", "lib": "dir", "lib/modules": "dir", "lib/modules/" + rel10: "dir",
		"lib/modules/" + rel10 + "/modules.dep":   "kernel/fs/vfat.ko: kernel/fs/fat.ko\nkernel/fs/fat.ko:\nkernel/drivers/old.ko:\nkernel/lib/gone/x.ko:\n",
		"lib/modules/" + rel10 + "/modules.alias": "alias fs-vfat vfat\n",
		"lib/modules/" + rel10 + "/kernel":        "dir", "lib/modules/" + rel10 + "/kernel/fs": "dir",
		"lib/modules/" + rel10 + "/kernel/fs/vfat.ko": "vfat v2", "lib/modules/" + rel10 + "/kernel/fs/fat.ko": "fat",
		"lib/modules/" + rel10 + "/kernel/fs/link.ko": "-> fat.ko",
		"lib/modules/" + rel10 + "/kernel/drivers":    "dir", "lib/modules/" + rel10 + "/kernel/lib": "dir",
		"lib/modules/" + rel10 + "/kernel/lib/gone": "dir",
		"lib/firmware": "dir", "lib/firmware/a": "dir", "lib/firmware/b": "dir",
		"lib/firmware/a/fw.bin": "firmware", "lib/firmware/a/fw-link.bin": "firmware",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("modules image tree:\n got %v\nwant %v", got, want)
	}
	if m.Kernel.Release != rel10 || m.Kernel.Path != "/boot/vmlinuz-"+rel10 || !reflect.DeepEqual(m.SkippedKernels, []string{rel9}) {
		t.Errorf("manifest kernel %+v, skipped %v: want %s from /boot, %s skipped", m.Kernel, m.SkippedKernels, rel10, rel9)
	}
	if m.ModulesImage.Modules != 2 || m.ModulesImage.Firmware != 2 {
		t.Errorf("manifest counts %d modules, %d firmware files, want 2 and 2", m.ModulesImage.Modules, m.ModulesImage.Firmware)
	}
	checkUKI(t, out[UKIFile], m)
	b, err := ReadManifest(filepath.Join(opts.OutDir, ManifestFile))
	if err != nil || !reflect.DeepEqual(b, m) {
		t.Errorf("ReadManifest() = %+v, %v, want %+v", b, err, m)
	}
}

// checkUKI checks the UKI's sections, signature and initrd config.
func checkUKI(t *testing.T, b []byte, m *Manifest) {
	t.Helper()
	img, err := pecoff.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	for sec, want := range map[string]string{".osrel": "ID=testhost\n", ".uname": rel10, ".cmdline": "console=ttyS0", ".linux": string(fakeKernel(t))} {
		if got := string(img.Section(sec)); got != want {
			t.Errorf("UKI section %s = %.40q, want %.40q", sec, got, want)
		}
	}
	if len(img.Section(".pcrsig")) == 0 || len(img.Section(".pcrpkey")) == 0 {
		t.Errorf("UKI has no signed PCR policy (.pcrsig, .pcrpkey)")
	}
	if _, err := authenticode.Verify(img, []*x509Cert{keys(t).DBCert}); err != nil {
		t.Errorf("authenticode.Verify(UKI) = %v, want nil", err)
	}
	rd := img.Section(".initrd")
	cfg, err := initrd.ReadConfig(rd)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ModulesImage.RootHash != m.ModulesImage.RootHash || cfg.ModulesImage.File != "initos/modules-"+rel10+".sqfs" || cfg.Kernel != rel10 {
		t.Errorf("initrd config %+v, kernel %s: want root hash %s", cfg.ModulesImage, cfg.Kernel, m.ModulesImage.RootHash)
	}
	if !reflect.DeepEqual(cfg.EarlyModules, []string{"vfat"}) || !strings.HasPrefix(cfg.BuildID, strings.TrimPrefix(m.Source.Digest, "sha256:")[:12]) {
		t.Errorf("initrd config early modules %v, build id %q", cfg.EarlyModules, cfg.BuildID)
	}
	files := initrdFiles(t, rd)
	if files["lib/modules/"+rel10+"/kernel/fs/vfat.ko"] != "vfat v2" || files["lib/modules/"+rel10+"/kernel/fs/fat.ko"] != "fat" {
		t.Errorf("initrd modules: %v, want vfat v2 and fat", files)
	}
}

// initrdFiles returns the regular files of an initrd.
func initrdFiles(t *testing.T, rd []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	r := initramfsReader(rd)
	for {
		h, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		out[h.Name] = string(b)
	}
}

func TestBuildReproducible(t *testing.T) {
	src := writeImage(t, hostLayers(t)...)
	var first map[string][]byte
	for _, workers := range []int{1, 2, 3} {
		opts := options(t, src)
		opts.Workers = workers
		if _, err := Build(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		out := readOut(t, opts.OutDir)
		if first == nil {
			first = out
			continue
		}
		for name, b := range first {
			if !bytes.Equal(out[name], b) {
				t.Errorf("Build(workers=%d): %s differs from workers=1", workers, name)
			}
		}
	}
}
