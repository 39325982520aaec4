package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeModules writes a minimal kernel module directory.
func fakeModules(t *testing.T) string {
	t.Helper()
	kdir := filepath.Join(t.TempDir(), "6.1.0-cli")
	for p, c := range map[string]string{"modules.dep": "kernel/a.ko:\n", "kernel/a.ko": "\x7fELF module a"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(kdir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(kdir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return kdir
}

func TestModulesPack(t *testing.T) {
	kdir := fakeModules(t)
	esp := t.TempDir()
	var j modulesJSON
	if err := json.Unmarshal([]byte(mustRun(t, "modules", "pack", "--kernel-dir", kdir, "-o", esp, "--json")), &j); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(esp, "modules-6.1.0-cli.sqfs")
	if j.Image != want || j.Release != "6.1.0-cli" || j.Modules != 1 || j.HashOffset != j.DataSize || len(j.RootHash) != 64 {
		t.Errorf("modules pack --json = %+v, want %s, release 6.1.0-cli, 1 module, hash offset = data size", j, want)
	}
	if got := mustRun(t, "sqfs", "cat", want, "modules/6.1.0-cli/kernel/a.ko"); got != "\x7fELF module a" {
		t.Errorf("module in the image = %q", got)
	}
	text := mustRun(t, "modules", "pack", "--kernel-dir", kdir, "-o", want)
	for _, line := range []string{"Kernel release:  \t6.1.0-cli", "Root hash:       \t" + j.RootHash, "Hash offset:     \t" + strconv.FormatInt(j.HashOffset, 10)} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("modules pack printed\n%s\nwant %q (and the same root hash as before)", text, line)
		}
	}
}

func TestModulesPackErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"modules", "pack", "-o", dir}, 2, "--kernel-dir and -o are required"},
		{[]string{"modules", "pack", "--kernel-dir", dir}, 2, "--kernel-dir and -o are required"},
		{[]string{"modules", "pack", "--kernel-dir", dir, "-o", filepath.Join(dir, "m.sqfs")}, 1, "is not a kernel module directory"},
		{[]string{"modules", "pack", "extra", "--kernel-dir", dir, "-o", dir}, 2, "wrong number of arguments"},
	} {
		err := mustFail(t, c.args...)
		if code := exitCode(err, io.Discard); err == nil || code != c.status || !strings.Contains(err.Error(), c.want) {
			t.Errorf("initos %q: exit %d, %v; want exit %d and %q", c.args, code, err, c.status, c.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed packs left %v", ents)
	}
}
