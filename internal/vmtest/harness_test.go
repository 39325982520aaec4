package vmtest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Tier 0 tests of the harness's pure logic; vm_test.go boots real VMs.

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int // sign
	}{
		{"vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-10-amd64", -1},
		{"vmlinuz-6.1.0-10-amd64", "vmlinuz-6.1.0-9-amd64", 1},
		{"vmlinuz-6.12.1", "vmlinuz-6.2.1", 1},
		{"vmlinuz-6.1", "vmlinuz-6.1", 0},
		{"vmlinuz-6.1", "vmlinuz-6.1.0", -1},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); sign(got) != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want sign %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func sign(n int) int { return min(max(n, -1), 1) }

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFindKernel(t *testing.T) {
	root := t.TempDir()
	boot, mods := filepath.Join(root, "boot"), filepath.Join(root, "modules")
	for _, v := range []string{"6.1.0-9-amd64", "6.1.0-10-amd64", "6.1.0-11-amd64"} {
		writeFile(t, filepath.Join(boot, "vmlinuz-"+v), "kernel")
	}
	for _, v := range []string{"6.1.0-9-amd64", "6.1.0-10-amd64"} { // -11 has no modules
		writeFile(t, filepath.Join(mods, v, "modules.dep"), "")
	}
	got, err := findKernel(boot, mods, "", "")
	if err != nil {
		t.Fatal(err)
	}
	want := Kernel{Image: filepath.Join(boot, "vmlinuz-6.1.0-10-amd64"), Version: "6.1.0-10-amd64", ModulesDir: filepath.Join(mods, "6.1.0-10-amd64")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findKernel() diff (-want +got):\n%s", diff)
	}
	// An explicit image (INITOS_VMTEST_KERNEL) wins.
	img := filepath.Join(boot, "vmlinuz-6.1.0-9-amd64")
	if got, err := findKernel(boot, mods, img, ""); err != nil || got.Version != "6.1.0-9-amd64" {
		t.Errorf("findKernel(image %s) = %+v, %v, want version 6.1.0-9-amd64", img, got, err)
	}
	if _, err := findKernel(t.TempDir(), mods, "", ""); err == nil {
		t.Errorf("findKernel(empty boot dir) = nil error, want one")
	}
	if _, err := findKernel(boot, mods, filepath.Join(boot, "vmlinuz-6.1.0-11-amd64"), ""); err == nil {
		t.Errorf("findKernel(image without modules) = nil error, want one")
	}
}

func TestGuestTests(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"a_test.go": "//go:build vmguest\n\npackage p\n\nfunc TestA(t *testing.T) {}\nfunc Testlower(t *testing.T) {}\nfunc TestB(t *testing.T) {}\n",
		"b_test.go": "package p\n\nfunc TestHost(t *testing.T) {}\n",
		"c_test.go": "//go:build !vmguest\n\npackage p\n\nfunc TestNotGuest(t *testing.T) {}\n",
		"d_test.go": "// Copyright\n\n//go:build linux && vmguest\n\npackage p_test\n\nfunc TestD(t *testing.T) {}\nfunc (x) TestMethod() {}\n",
		"e_test.go": "//go:build linux\n\npackage p\n\nfunc TestLinux(t *testing.T) {}\n",
		"guest.go":  "//go:build vmguest\n\npackage p\n\nfunc TestNotATestFile(t *testing.T) {}\n",
		"f_test.go": "package p\n\n//go:build vmguest\n\nfunc TestLateConstraint(t *testing.T) {}\n",
		"g_test.go": "//go:build vmguest || !vmguest\n\npackage p\n\nfunc TestBoth(t *testing.T) {}\n",
		"h_test.go": "//go:build vmguest\n\npackage p\n\nfunc Test(t *testing.T) {}\n",
	}
	for name, src := range files {
		writeFile(t, filepath.Join(dir, name), src)
	}
	got, err := guestTests(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Test", "TestA", "TestB", "TestD"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("guestTests() diff (-want +got):\n%s", diff)
	}
	if got, want := runRegexp(want), "^(Test|TestA|TestB|TestD)$"; got != want {
		t.Errorf("runRegexp() = %q, want %q", got, want)
	}
	writeFile(t, filepath.Join(dir, "bad_test.go"), "//go:build vmguest\npackage\n")
	if _, err := guestTests(dir); err == nil {
		t.Errorf("guestTests(dir with a syntax error) = nil error, want one")
	}
}

// test2jsonSample is what `go tool test2json` makes of a guest run.
const test2jsonSample = `{"Action":"start"}
{"Action":"run","Test":"TestA"}
{"Action":"output","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"run","Test":"TestA/sub"}
{"Action":"output","Test":"TestA/sub","Output":"    a_test.go:9: in sub\n"}
{"Action":"output","Test":"TestA/sub","Output":"    --- FAIL: TestA/sub (0.50s)\n"}
{"Action":"fail","Test":"TestA/sub","Elapsed":0.5}
{"Action":"fail","Test":"TestA","Elapsed":0.6}
{"Action":"run","Test":"TestSkip"}
{"Action":"output","Test":"TestSkip","Output":"    a_test.go:20: not in VM: needs a GPU\n"}
{"Action":"output","Test":"TestSkip","Output":"--- SKIP: TestSkip (0.00s)\n"}
{"Action":"skip","Test":"TestSkip","Elapsed":0}
{"Action":"run","Test":"TestCrash"}
{"Action":"output","Output":"panic: boom\n"}
{"Action":"fail","Elapsed":1}
`

func TestBuildResults(t *testing.T) {
	evs, err := parseEvents(strings.NewReader(test2jsonSample))
	if err != nil {
		t.Fatal(err)
	}
	r := buildResults(evs)
	type summary struct{ Name, Action, Output string }
	var got []summary
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range r.byName {
			if !yield(n) {
				return
			}
		}
	}) {
		g := r.byName[name]
		got = append(got, summary{g.name, g.action, g.output.String()})
	}
	want := []summary{
		{"TestA", "fail", "=== RUN   TestA\n"},
		{"sub", "fail", "    a_test.go:9: in sub\n    --- FAIL: TestA/sub (0.50s)\n"},
		{"TestCrash", "", ""},
		{"TestSkip", "skip", "    a_test.go:20: not in VM: needs a GPU\n--- SKIP: TestSkip (0.00s)\n"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("buildResults() diff (-want +got):\n%s", diff)
	}
	if got := r.byName["TestA/sub"].elapsed; got != 500*time.Millisecond {
		t.Errorf("buildResults(): TestA/sub elapsed %v, want 500ms from its --- FAIL line", got)
	}
	if len(r.top) != 3 || len(r.top[0].children) != 1 {
		t.Errorf("buildResults(): %d top-level tests, %d children of TestA, want 3 and 1", len(r.top), len(r.top[0].children))
	}
	if !r.failed || r.pkg.String() != "panic: boom\n" {
		t.Errorf("buildResults(): package failed=%v output %q, want true and the panic", r.failed, r.pkg.String())
	}
	if _, err := parseEvents(strings.NewReader("{not json")); err == nil {
		t.Errorf("parseEvents(bad JSON) = nil error, want one")
	}
}

func TestDecodeEvents(t *testing.T) {
	raw := "=== RUN   TestX\n    x_test.go:3: hello\n--- PASS: TestX (0.01s)\nPASS\n"
	evs, err := decodeEvents([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	r := buildResults(evs)
	if g := r.byName["TestX"]; g == nil || g.action != "pass" || !strings.Contains(g.output.String(), "hello") {
		t.Errorf("decodeEvents(%q): TestX = %+v, want passed with its output", raw, g)
	}
}

func TestSkipReason(t *testing.T) {
	tests := []struct {
		output string
		want   string
		ok     bool
	}{
		{"    a_test.go:20: not in VM: needs a GPU\n", "not in VM: needs a GPU", true},
		{"    a_test.go:20: needs root\n", "", false},
		{"not in VM: printed without t.Log\n", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := skipReason(tt.output)
		if got != tt.want || ok != tt.ok {
			t.Errorf("skipReason(%q) = %q, %v, want %q, %v", tt.output, got, ok, tt.want, tt.ok)
		}
	}
	if got, want := testOutput("=== RUN   TestA\n    a.go:1: x\n--- PASS: TestA (0.00s)\n"), "    a.go:1: x\n"; got != want {
		t.Errorf("testOutput() = %q, want %q", got, want)
	}
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		console string
		want    int
		ok      bool
	}{
		{"boot\nINITOS-VMTEST: exit 0\r\n[ 1.0] reboot: Power down\n", 0, true},
		{"INITOS-VMTEST: exit 3\n", 3, true},
		{"INITOS-VMTEST: exit -1", -1, true},
		{"Kernel panic\n", 0, false},
		{"INITOS-VMTEST: exit x\n", 0, false},
	}
	for _, tt := range tests {
		got, ok := exitStatus([]byte(tt.console))
		if got != tt.want || ok != tt.ok {
			t.Errorf("exitStatus(%q) = %d, %v, want %d, %v", tt.console, got, ok, tt.want, tt.ok)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"-m":                   "-m",
		"file=/a/b,format=raw": "file=/a/b,format=raw",
		"console=ttyS0 quiet":  "'console=ttyS0 quiet'",
		"it's":                 `'it'\''s'`,
		"":                     "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTail(t *testing.T) {
	if got, want := tail([]byte("a\r\nb\nc\n"), 2), "b\nc"; got != want {
		t.Errorf("tail(3 lines, 2) = %q, want %q", got, want)
	}
}

func TestConsoleWatch(t *testing.T) {
	exits := 0
	w := &consoleWatch{t: t, onExit: func() { exits++ }}
	for _, chunk := range []string{"SeaBIOS\r\nBooting..\x1b[2JINITOS-VMTE", "ST: runner start upt", "ime=1.87\r\n", "INITOS-VMTEST: exit 0\n", "INITOS-VMTEST: exit 0"} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	w.flush()
	if w.started.IsZero() || w.uptime != "1.87" {
		t.Errorf("consoleWatch: started %v uptime %q, want the marker seen with uptime 1.87", w.started, w.uptime)
	}
	if exits != 1 {
		t.Errorf("consoleWatch: onExit called %d times, want 1", exits)
	}
}
