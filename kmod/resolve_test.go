package kmod

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func openSynthetic(t *testing.T) *Index {
	t.Helper()
	ix, err := Open("testdata/synthetic")
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// m builds expected modules: "name" loadable, "name@path", "+name" built-in, "?" prefix optional.
func mods(t *testing.T, ix *Index, specs ...string) []Module {
	t.Helper()
	var out []Module
	for _, s := range specs {
		var m Module
		if strings.HasPrefix(s, "?") {
			m.Optional, s = true, s[1:]
		}
		if strings.HasPrefix(s, "+") {
			m.Builtin, s = true, s[1:]
		}
		m.Name = s
		if !m.Builtin {
			e, ok := ix.deps[s]
			if !ok {
				t.Fatalf("fixture has no module %s", s)
			}
			m.Path = e.path
		}
		out = append(out, m)
	}
	return out
}

func TestResolveSynthetic(t *testing.T) {
	ix := openSynthetic(t)
	tests := []struct {
		names []string
		want  []string
	}{
		{[]string{"top-mod"}, []string{"base", "mid_mod", "top_mod"}},
		{[]string{"top_mod"}, []string{"base", "mid_mod", "top_mod"}},
		{[]string{"fs-top"}, []string{"base", "mid_mod", "top_mod"}},
		{[]string{"fs_top"}, []string{"base", "mid_mod", "top_mod"}},
		{[]string{"top-mod", "base", "mid-mod"}, []string{"base", "mid_mod", "top_mod"}},
		{[]string{"base", "top-mod"}, []string{"base", "mid_mod", "top_mod"}},
		{[]string{"lonely"}, []string{"lonely"}},
		{[]string{"pci:v0000ABCDd00001234sv00000000sd00000000bc01sc02i03"}, []string{"lonely"}},
		{[]string{"usb:v1234p0015dc00"}, []string{"lonely"}},
		{[]string{"crypto-thing"}, []string{"?multi1", "?multi2"}},
		{[]string{"crypto-thing", "multi2"}, []string{"?multi1", "multi2"}},
		{[]string{"sha_thing"}, []string{"+sha_thing"}},
		{[]string{"crypto-builtin-thing"}, []string{"+sha_thing"}},
		{[]string{"built-in-one"}, []string{"+built_in_one"}},
		{[]string{"needs-soft"}, []string{"base", "?softloop", "?softer", "?+sha_thing", "needs_soft"}},
		{[]string{"softer", "needs-soft"}, []string{"?softloop", "softer", "base", "?+sha_thing", "needs_soft"}},
		{[]string{"needs-soft", "softer"}, []string{"base", "?softloop", "softer", "?+sha_thing", "needs_soft"}},
		{[]string{"needs-soft", "sha-thing"}, []string{"base", "?softloop", "?softer", "+sha_thing", "needs_soft"}},
		{nil, nil},
	}
	for _, tt := range tests {
		got, err := ix.Resolve(tt.names...)
		if err != nil {
			t.Errorf("Resolve(%q): %v", tt.names, err)
			continue
		}
		if diff := cmp.Diff(mods(t, ix, tt.want...), got); diff != "" {
			t.Errorf("Resolve(%q) diff (-want +got):\n%s", tt.names, diff)
		}
	}
}

func TestResolveErrors(t *testing.T) {
	ix := openSynthetic(t)
	tests := []struct {
		name    string
		want    string
		missing *NotFoundError
	}{
		{"nope", "module nope not found in testdata/synthetic (modules.dep, modules.alias, modules.builtin)",
			&NotFoundError{Name: "nope", Dir: "testdata/synthetic"}},
		{"broken", "module missing not found in testdata/synthetic (modules.dep, modules.alias, modules.builtin), needed by broken",
			&NotFoundError{Name: "missing", Dir: "testdata/synthetic", By: "broken"}},
		{"dangling", "module nosuchmodule not found in testdata/synthetic (modules.dep, modules.alias, modules.builtin), needed by dangling",
			&NotFoundError{Name: "nosuchmodule", Dir: "testdata/synthetic", By: "dangling"}},
		{"usb:v1234p0035dc00", "module usb:v1234p0035dc00 not found in testdata/synthetic (modules.dep, modules.alias, modules.builtin)",
			&NotFoundError{Name: "usb:v1234p0035dc00", Dir: "testdata/synthetic"}},
		{"two-dangling", "module nosuch1 not found in testdata/synthetic (modules.dep, modules.alias, modules.builtin), needed by two-dangling",
			&NotFoundError{Name: "nosuch1", Dir: "testdata/synthetic", By: "two-dangling"}},
		{"cyc1", "resolve module cyc1: dependency cycle: cyc1 -> cyc2 -> cyc1", nil},
	}
	for _, tt := range tests {
		got, err := ix.Resolve("lonely", tt.name)
		if err == nil {
			t.Errorf("Resolve(%q) = %v, want error %q", tt.name, got, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Resolve(%q) error = %q, want %q", tt.name, err, tt.want)
		}
		var nf *NotFoundError
		if errors.As(err, &nf) != (tt.missing != nil) || errors.Is(err, ErrNotFound) != (tt.missing != nil) {
			t.Errorf("Resolve(%q) error %v: errors.As(*NotFoundError) = %v, want %v", tt.name, err, nf != nil, tt.missing != nil)
		}
		if tt.missing != nil && nf != nil {
			if diff := cmp.Diff(tt.missing, nf); diff != "" {
				t.Errorf("Resolve(%q) NotFoundError diff (-want +got):\n%s", tt.name, diff)
			}
		}
	}
}

func TestDir(t *testing.T) {
	if got := openSynthetic(t).Dir(); got != "testdata/synthetic" {
		t.Errorf("Dir() = %q, want %q", got, "testdata/synthetic")
	}
}

// TestOpenErrors writes broken index files and checks which check fails.
func TestOpenErrors(t *testing.T) {
	tests := []struct {
		file, content, want string
	}{
		{"modules.dep", "kernel/a.ko kernel/b.ko\n", "parse modules.dep line 1: missing ':' after module path"},
		{"modules.dep", "/lib/modules/x/kernel/a.ko:\n", `parse modules.dep line 1: module path "/lib/modules/x/kernel/a.ko": absolute`},
		{"modules.dep", "kernel/a.ko: ../../etc/shadow.ko\n", `parse modules.dep line 1: dependency of kernel/a.ko: module path "../../etc/shadow.ko": not a clean relative path`},
		{"modules.dep", "kernel/./a.ko:\n", `parse modules.dep line 1: module path "kernel/./a.ko": not a clean relative path`},
		{"modules.dep", "kernel/a.txt:\n", `parse modules.dep line 1: module path "kernel/a.txt": not a .ko file`},
		{"modules.dep", ":\n", "parse modules.dep line 1: empty module path"},
		{"modules.dep", "kernel/a-b.ko:\nkernel/x/a_b.ko:\n", "parse modules.dep line 2: module a_b listed twice"},
		{"modules.dep", strings.Repeat("x", maxLine+1), "parse modules.dep after line 0: bufio.Scanner: token too long"},
		{"modules.alias", "alias only-two\n", `parse modules.alias line 1: want "alias ALIAS MODULE", got 2 fields starting "alias"`},
		{"modules.alias", "options a b\n", `parse modules.alias line 1: want "alias ALIAS MODULE", got 3 fields starting "options"`},
		{"modules.alias", "alias pci:[v* a\n", `parse modules.alias line 1: alias pattern "pci:[v*": syntax error in pattern`},
		{"modules.softdep", "softdep\n", `parse modules.softdep line 1: want "softdep MODULE pre: ...", got "softdep"`},
		{"modules.softdep", "blacklist x\n", `parse modules.softdep line 1: want "softdep MODULE pre: ...", got "blacklist x"`},
		{"modules.builtin.modinfo", "a.alias=b\x00noequals\x00", `parse modules.builtin.modinfo record 2: want MODULE.KEY=VALUE, got "noequals"`},
		{"modules.builtin.modinfo", ".alias=b\x00", `parse modules.builtin.modinfo record 1: want MODULE.KEY=VALUE, got ".alias=b"`},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		if tt.file != "modules.dep" {
			writeFile(t, filepath.Join(dir, "modules.dep"), "kernel/a.ko:\n")
		}
		writeFile(t, filepath.Join(dir, tt.file), tt.content)
		_, err := Open(dir)
		want := "open module index " + dir + ": " + tt.want
		if err == nil || err.Error() != want {
			t.Errorf("Open(%s with %.40q) error = %v, want %q", tt.file, tt.content, err, want)
		}
	}
}

func TestOpenMissing(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(empty dir) error = %v, want fs.ErrNotExist", err)
	}
	// Only modules.dep is required.
	writeFile(t, filepath.Join(dir, "modules.dep"), "kernel/a.ko:\n")
	ix, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(dir with only modules.dep): %v", err)
	}
	got, err := ix.Resolve("a")
	if diff := cmp.Diff([]Module{{Name: "a", Path: "kernel/a.ko"}}, got); err != nil || diff != "" {
		t.Errorf("Resolve(a) = %v, %v; diff (-want +got):\n%s", got, err, diff)
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"dm-verity", "dm_verity"},
		{"dm_verity", "dm_verity"},
		{"usb:v1234p00[0-2]*d-x", "usb:v1234p00[0-2]*d_x"},
		{"", ""},
		{"a[-]-", "a[-]_"},
	}
	for _, tt := range tests {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
