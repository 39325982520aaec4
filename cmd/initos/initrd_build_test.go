package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"initos/bootconfig"
	"initos/cpio"
	"initos/initramfs"
	"initos/initrd"
	"initos/kmod"
)

// initrdFakeKernelDir writes a module directory with modules a (needs b), b,
// c (unrelated) and the built-in d.
func initrdFakeKernelDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "6.1.0-test")
	files := map[string]string{
		"kernel/a.ko":             "module a",
		"kernel/b.ko":             "module b",
		"kernel/c.ko":             "module c",
		"modules.dep":             "kernel/a.ko: kernel/b.ko\nkernel/b.ko:\nkernel/c.ko:\n",
		"modules.alias":           "alias fs-a a\nalias fs-c c\nalias pci:v1234* b\n",
		"modules.softdep":         "softdep c pre: a\n",
		"modules.builtin":         "kernel/d.ko\n",
		"modules.builtin.modinfo": "d.alias=fs-d\x00",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// initrdReadImage returns the contents of an image's regular files, and
// "<char 5,1>" for character devices.
func initrdReadImage(t *testing.T, path string) map[string]string {
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
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		switch h.Mode & cpio.TypeMask {
		case cpio.TypeChar:
			got[h.Name] = fmt.Sprintf("<char %d,%d>", h.RDevMajor, h.RDevMinor)
		case cpio.TypeReg:
			b, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			got[h.Name] = string(b)
		}
	}
}

func TestInitrdBuild(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	kdir := initrdFakeKernelDir(t)
	tmp := t.TempDir()
	initBin := filepath.Join(tmp, "init.bin")
	extra := filepath.Join(tmp, "db.auth")
	for p, data := range map[string]string{initBin: "\x7fELF fake init", extra: "auth payload"} {
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build := func(out, compress string) string {
		t.Helper()
		stdout, stderr, err := runInitrdCmd(t, "build", "--init", initBin, "--kernel-dir", kdir,
			"--module", "fs-a", "--module", "d", "--file", "/keys/db.auth="+extra, "--compress", compress, "-o", out)
		if err != nil {
			t.Fatalf("initrd build: %v\n%s", err, stderr)
		}
		return stdout
	}
	for _, compress := range []string{"zstd", "gzip", "none"} {
		t.Run(compress, func(t *testing.T) {
			one, two := filepath.Join(tmp, compress+"-1.img"), filepath.Join(tmp, compress+"-2.img")
			if out := build(one, compress); !strings.Contains(out, "3 modules, 1 extra files") || !strings.Contains(out, "module a ") ||
				!strings.Contains(out, "config /etc/initos/initrd.json: mode boot, security version 0, kernel 6.1.0-test") {
				t.Errorf("initrd build output = %q, want a summary with 3 modules and the config", out)
			}
			build(two, compress)
			b1, _ := os.ReadFile(one)
			b2, _ := os.ReadFile(two)
			if !bytes.Equal(b1, b2) {
				t.Errorf("initrd build twice (%s): %d and %d bytes differ", compress, len(b1), len(b2))
			}
			initrdCheckContents(t, one)
		})
	}
}

func initrdCheckContents(t *testing.T, img string) {
	t.Helper()
	got := initrdReadImage(t, img)
	mod := "lib/modules/6.1.0-test/"
	want := map[string]string{
		"init": "\x7fELF fake init", "keys/db.auth": "auth payload",
		mod + "kernel/a.ko": "module a", mod + "kernel/b.ko": "module b",
		mod + "modules.dep":             "kernel/a.ko: kernel/b.ko\nkernel/b.ko:\n",
		mod + "modules.alias":           "alias fs-a a\nalias pci:v1234* b\n",
		mod + "modules.softdep":         "",
		mod + "modules.builtin":         "kernel/d.ko\n",
		mod + "modules.builtin.modinfo": "d.alias=fs-d\x00",
		"dev/console":                   "<char 5,1>",
		"etc/initos/initrd.json": `{
  "version": 1,
  "mode": "boot",
  "security_version": 0,
  "kernel": "6.1.0-test",
  "early_modules": [
    "fs-a",
    "d"
  ],
  "modules_image": {},
  "unlock": {},
  "root": {},
  "control": {
    "network": {}
  },
  "watchdog": {}
}
`,
	}
	for name, data := range want {
		if g, ok := got[name]; !ok || g != data {
			t.Errorf("initrd entry %s = %q (present %v), want %q", name, g, ok, data)
		}
	}
	for _, absent := range []string{mod + "kernel/c.ko"} {
		if _, ok := got[absent]; ok {
			t.Errorf("initrd has %s, want it left out (not asked for)", absent)
		}
	}
	// The shipped index is usable by kmod as the guest would use it.
	dir := t.TempDir()
	for name, data := range got {
		if !strings.HasPrefix(name, mod) {
			continue
		}
		p := filepath.Join(dir, strings.TrimPrefix(name, mod))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ix, err := kmod.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := ix.Resolve("fs-a", "fs-d")
	if err != nil {
		t.Fatalf("Resolve in the shipped index: %v", err)
	}
	var names []string
	for _, m := range mods {
		names = append(names, m.Name)
	}
	if diff := cmp.Diff([]string{"b", "a", "d"}, names); diff != "" {
		t.Errorf("Resolve(fs-a, fs-d) in the shipped index (-want +got):\n%s", diff)
	}
}

func TestInitrdBuildErrors(t *testing.T) {
	kdir := initrdFakeKernelDir(t)
	bin := filepath.Join(kdir, "kernel/a.ko")
	out := filepath.Join(t.TempDir(), "out.img")
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"--kernel-dir", kdir, "-o", out}, false, "--init: initos-init is neither next to this program nor in $PATH"},
		{[]string{"--init", bin, "--kernel-dir", kdir}, true, "-o is required"},
		{[]string{"--init", bin, "--module", "a", "-o", out}, true, "--kernel-dir is required"},
		{[]string{"--init", bin, "--no-modules", "--module", "a", "-o", out}, true, "--module and --no-modules exclude each other"},
		{[]string{"--init", bin, "--no-modules", "--file", "nohost", "-o", out}, true, "want GUESTPATH=HOSTPATH"},
		{[]string{"--init", bin, "--no-modules", "--compress", "xz", "-o", out}, true, "--compress"},
		{[]string{"--init", bin, "--no-modules", "--mode", "rescue", "-o", out}, true, `--mode "rescue"`},
		{[]string{"--init", bin, "--kernel-dir", kdir, "--module", "nope", "-o", out}, false, "nope not found"},
		{[]string{"--init", filepath.Join(kdir, "missing"), "--no-modules", "-o", out}, false, "init:"},
		{[]string{"--init", bin, "--no-modules", "--file", "x=" + filepath.Join(kdir, "missing"), "-o", out}, false, "file x"},
		{[]string{"--init", bin, "--no-modules", "--config", filepath.Join(kdir, "modules.dep"), "-o", out}, false, "--config: read initrd config"},
		{[]string{"--init", bin, "--no-modules", "--modules-image", filepath.Join(kdir, "modules.dep"), "-o", out}, false, "--modules-image: modules image"},
	} {
		t.Setenv("PATH", "/nonexistent")
		_, _, err := runInitrdCmd(t, append([]string{"build"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, errUsage) != tc.usage {
			t.Errorf("initrd build %q = %v, want an error containing %q (usage %v)", tc.args, err, tc.want, tc.usage)
		}
		if _, serr := os.Stat(out); serr == nil {
			t.Fatalf("initrd build %q left %s behind", tc.args, out)
		}
	}
}

// TestInitrdBuildConfig: --config, --mode, --security-version,
// --build-id, --modules-image and --json shape the shipped config.
func TestInitrdBuildConfig(t *testing.T) {
	kdir := initrdFakeKernelDir(t)
	tmp := t.TempDir()
	initBin := filepath.Join(tmp, "init")
	os.WriteFile(initBin, []byte("\x7fELF"), 0o755)
	base := filepath.Join(tmp, "base.json")
	os.WriteFile(base, []byte(`{"version":1,"mode":"boot","failure_timeout_sec":30}`), 0o644)
	img := ukiModulesImage(t)
	out := filepath.Join(tmp, "initrd.img")
	stdout, stderr, err := runInitrdCmd(t, "build", "--init", initBin, "--kernel-dir", kdir, "--no-default-modules", "--module", "fs-a",
		"--config", base, "--mode", "install", "--security-version", "42", "--build-id", "b1", "--modules-image", img, "--json", "-o", out)
	if err != nil {
		t.Fatalf("initrd build: %v\n%s", err, stderr)
	}
	var s struct {
		Bytes   int64 `json:"bytes"`
		Modules []struct {
			Name string `json:"name"`
		} `json:"modules"`
		Config bootconfig.Config `json:"config"`
	}
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("--json output %q: %v", stdout, err)
	}
	c := s.Config
	if c.Mode != "install" || c.SecurityVersion != 42 || c.BuildID != "b1" || c.FailureTimeoutSec != 30 || len(s.Modules) != 2 || s.Bytes == 0 ||
		c.ModulesImage.File != "initos/modules-6.1.0-test.sqfs" || len(c.ModulesImage.RootHash) != 64 {
		t.Errorf("summary = %+v", s)
	}
	b, _ := os.ReadFile(out)
	shipped, err := initrd.ReadConfig(b)
	if err != nil || shipped.ModulesImage != c.ModulesImage || shipped.SecurityVersion != 42 {
		t.Errorf("shipped config = %+v, %v", shipped, err)
	}
}
