package btrfsioctl

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"initos/btrfsioctl/btrfstest"
	"initos/internal/testenv"
)

// listOracle parses `btrfs subvolume list -p -u -q -R MNT`.
func listOracle(t *testing.T, mnt string, extra ...string) []Subvolume {
	t.Helper()
	out := testenv.Run(t, "btrfs", append(append([]string{"subvolume", "list", "-p", "-u", "-q", "-R"}, extra...), mnt)...)
	re := regexp.MustCompile(`^ID (\d+) gen (\d+) parent (\d+) top level \d+ parent_uuid (\S+)\s+received_uuid (\S+)\s+uuid (\S+) path (.*)$`)
	var subs []Subvolume
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		m := re.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("btrfs subvolume list: unparsed line %q", line)
		}
		id, _ := strconv.ParseUint(m[1], 10, 64)
		gen, _ := strconv.ParseUint(m[2], 10, 64)
		parent, _ := strconv.ParseUint(m[3], 10, 64)
		subs = append(subs, Subvolume{ID: id, Generation: gen, ParentID: parent, Path: m[7],
			ParentUUID: parseUUID(t, m[4]), ReceivedUUID: parseUUID(t, m[5]), UUID: parseUUID(t, m[6])})
	}
	return subs
}

func parseUUID(t *testing.T, s string) UUID {
	t.Helper()
	var u UUID
	if s == "-" {
		return u
	}
	h := strings.ReplaceAll(s, "-", "")
	for i := range u {
		v, err := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		if err != nil {
			t.Fatalf("parse uuid %q: %v", s, err)
		}
		u[i] = byte(v)
	}
	return u
}

// showOracle parses `btrfs subvolume show PATH` into key -> value.
func showOracle(t *testing.T, path string) map[string]string {
	t.Helper()
	out := testenv.Run(t, "btrfs", "subvolume", "show", path)
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func roOracle(t *testing.T, path string) bool {
	t.Helper()
	out := strings.TrimSpace(string(testenv.Run(t, "btrfs", "property", "get", "-ts", path, "ro")))
	return out == "ro=true"
}

func mustNoErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestSubvolumeLifecycle(t *testing.T) {
	mnt := btrfstest.Mount(t, 256)
	p := func(s ...string) string { return filepath.Join(append([]string{mnt}, s...)...) }

	mustNoErr(t, "Create(a)", Create(p("a")))
	mustNoErr(t, "WriteFile", os.WriteFile(p("a", "f"), []byte("hello"), 0o644))
	mustNoErr(t, "Mkdir", os.Mkdir(p("a", "d"), 0o755))
	mustNoErr(t, "Create(a/d/b)", Create(p("a", "d", "b")))
	mustNoErr(t, "Snapshot(a, snap)", Snapshot(p("a"), p("snap"), false))
	mustNoErr(t, "Snapshot(a, ro)", Snapshot(p("a"), p("ro"), true))
	mustNoErr(t, "Sync", Sync(mnt))

	checkList(t, mnt)
	for _, rel := range []string{"a", "a/d/b", "snap", "ro"} {
		checkInfo(t, mnt, rel)
	}
	if ok, err := IsSubvolume(p("a", "d")); ok || err != nil {
		t.Errorf("IsSubvolume(a/d) = %v, %v, want false, nil", ok, err)
	}

	// Read-only flag, checked against btrfs property get.
	for _, ro := range []bool{true, false, true} {
		mustNoErr(t, "SetReadOnly", SetReadOnly(p("snap"), ro))
		got, err := ReadOnly(p("snap"))
		mustNoErr(t, "ReadOnly", err)
		if got != ro || roOracle(t, p("snap")) != ro {
			t.Errorf("ReadOnly(snap) = %v, btrfs property = %v, want %v", got, roOracle(t, p("snap")), ro)
		}
	}
	if err := os.WriteFile(p("snap", "new"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write into read-only snapshot: %v, want EROFS", err)
	}

	// Default subvolume, checked against btrfs subvolume get-default.
	id, err := ID(p("snap"))
	mustNoErr(t, "ID(snap)", err)
	mustNoErr(t, "SetDefault", SetDefault(mnt, id))
	def, err := DefaultID(mnt)
	mustNoErr(t, "DefaultID", err)
	out := testenv.Run(t, "btrfs", "subvolume", "get-default", mnt)
	if def != id || !bytes.HasPrefix(out, []byte("ID "+strconv.FormatUint(id, 10)+" ")) {
		t.Errorf("DefaultID = %d, btrfs get-default %q, want %d", def, out, id)
	}
	mustNoErr(t, "SetDefault(5)", SetDefault(mnt, 5))
	if def, _ := DefaultID(mnt); def != 5 {
		t.Errorf("DefaultID after reset = %d, want 5", def)
	}

	// Deletion: nested fails, recursive works, by id works, read-only works.
	err = Delete(p("a"))
	var pe *os.PathError
	if !errors.Is(err, unix.ENOTEMPTY) || !errors.As(err, &pe) || pe.Path != p("a") ||
		!strings.Contains(err.Error(), "ioctl(BTRFS_IOC_SNAP_DESTROY_V2)") {
		t.Errorf("Delete(a with nested) = %v, want ENOTEMPTY naming path and ioctl", err)
	}
	mustNoErr(t, "DeleteRecursive(a)", DeleteRecursive(p("a")))
	mustNoErr(t, "Delete(ro)", Delete(p("ro")))
	mustNoErr(t, "SetReadOnly(snap, false)", SetReadOnly(p("snap"), false))
	sid, err := ID(p("snap"))
	mustNoErr(t, "ID(snap)", err)
	mustNoErr(t, "DeleteByID(snap)", DeleteByID(mnt, sid))
	if left := listOracle(t, mnt); len(left) != 0 {
		t.Errorf("after deletes, btrfs subvolume list = %v, want none", left)
	}
}

// checkList compares List with btrfs subvolume list, and the read-only
// subvolumes with btrfs subvolume list -r.
func checkList(t *testing.T, mnt string) {
	t.Helper()
	got, err := List(mnt)
	mustNoErr(t, "List", err)
	want := listOracle(t, mnt)
	ignore := cmp.FilterPath(func(p cmp.Path) bool {
		f := p.Last().String()
		return f == ".Name" || f == ".CreationGeneration" || f == ".ReadOnly"
	}, cmp.Ignore())
	if diff := cmp.Diff(want, got, ignore); diff != "" {
		t.Errorf("List(%s) diff (-btrfs +got):\n%s", mnt, diff)
	}
	var gotRO []string
	for _, s := range got {
		if s.ReadOnly {
			gotRO = append(gotRO, s.Path)
		}
	}
	var wantRO []string
	for _, s := range listOracle(t, mnt, "-r") {
		wantRO = append(wantRO, s.Path)
	}
	if diff := cmp.Diff(wantRO, gotRO); diff != "" {
		t.Errorf("read-only subvolumes diff (-btrfs +got):\n%s", diff)
	}
}

// checkInfo compares Info of the subvolume mnt/rel with btrfs subvolume
// show, and checks ID, PathOf and IsSubvolume agree with it.
func checkInfo(t *testing.T, mnt, rel string) {
	t.Helper()
	path := filepath.Join(mnt, rel)
	info, err := Info(path)
	mustNoErr(t, "Info("+rel+")", err)
	show := showOracle(t, path)
	flags := "-"
	if info.ReadOnly {
		flags = "readonly"
	}
	gotShow := map[string]string{
		"Name": info.Name, "UUID": info.UUID.String(), "Parent UUID": info.ParentUUID.String(),
		"Received UUID": info.ReceivedUUID.String(), "Subvolume ID": strconv.FormatUint(info.ID, 10),
		"Generation": strconv.FormatUint(info.Generation, 10), "Gen at creation": strconv.FormatUint(info.CreationGeneration, 10),
		"Parent ID": strconv.FormatUint(info.ParentID, 10), "Flags": flags,
	}
	for k, v := range gotShow {
		if show[k] != v {
			t.Errorf("Info(%s) %s = %q, want %q (btrfs subvolume show)", rel, k, v, show[k])
		}
	}
	if info.Path != rel {
		t.Errorf("Info(%s).Path = %q, want %q", rel, info.Path, rel)
	}
	id, err := ID(path)
	mustNoErr(t, "ID", err)
	if id != info.ID {
		t.Errorf("ID(%s) = %d, want %d", rel, id, info.ID)
	}
	back, err := PathOf(mnt, id)
	mustNoErr(t, "PathOf", err)
	if back != rel {
		t.Errorf("PathOf(%d) = %q, want %q", id, back, rel)
	}
	if ok, err := IsSubvolume(path); !ok || err != nil {
		t.Errorf("IsSubvolume(%s) = %v, %v, want true, nil", rel, ok, err)
	}
}

func TestErrors(t *testing.T) {
	mnt := btrfstest.Mount(t, 256)
	a := filepath.Join(mnt, "a")
	mustNoErr(t, "Create", Create(a))
	tests := []struct {
		name string
		err  error
		want error
		op   string
	}{
		{"create existing", Create(a), unix.EEXIST, "BTRFS_IOC_SUBVOL_CREATE_V2"},
		{"create in missing dir", Create(filepath.Join(mnt, "no", "x")), unix.ENOENT, ""},
		{"snapshot missing", Snapshot(filepath.Join(mnt, "none"), filepath.Join(mnt, "s"), false), unix.ENOENT, ""},
		{"delete plain dir", func() error { os.Mkdir(filepath.Join(mnt, "d"), 0o755); return Delete(filepath.Join(mnt, "d")) }(), unix.EINVAL, "BTRFS_IOC_SNAP_DESTROY_V2"},
		{"bad name", Create(filepath.Join(mnt, strings.Repeat("x", 5000))), unix.ENAMETOOLONG, ""},
		{"not btrfs", Create(filepath.Join(t.TempDir(), "x")), unix.ENOTTY, "BTRFS_IOC_SUBVOL_CREATE_V2"},
	}
	for _, tt := range tests {
		var pe *os.PathError
		if !errors.Is(tt.err, tt.want) || !errors.As(tt.err, &pe) || !strings.Contains(tt.err.Error(), tt.op) {
			t.Errorf("%s: err = %v, want %v in *os.PathError mentioning %q", tt.name, tt.err, tt.want, tt.op)
		}
	}
}

func TestClone(t *testing.T) {
	mnt := btrfstest.Mount(t, 256)
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096*2) // 128 KiB
	src, err := os.Create(filepath.Join(mnt, "src"))
	mustNoErr(t, "create", err)
	defer src.Close()
	src.Write(data)
	dst, err := os.Create(filepath.Join(mnt, "dst"))
	mustNoErr(t, "create", err)
	defer dst.Close()
	mustNoErr(t, "Clone", Clone(dst, src))
	got, _ := os.ReadFile(dst.Name())
	if !bytes.Equal(got, data) {
		t.Errorf("Clone: dst differs from src")
	}
	part, err := os.Create(filepath.Join(mnt, "part"))
	mustNoErr(t, "create", err)
	defer part.Close()
	mustNoErr(t, "CloneRange", CloneRange(part, src, 65536, 65536, 0))
	got, _ = os.ReadFile(part.Name())
	if !bytes.Equal(got, data[65536:]) {
		t.Errorf("CloneRange: got %d bytes, want the second 64 KiB of src", len(got))
	}
	err = CloneRange(part, src, 1, 4096, 0)
	if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "FICLONERANGE") {
		t.Errorf("CloneRange(unaligned) = %v, want EINVAL naming FICLONERANGE", err)
	}
}
