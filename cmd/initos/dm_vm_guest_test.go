//go:build vmguest

package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"initos/dm"
	"initos/loop"
	"initos/verity"
)

// dmGuestData writes 1 MiB of deterministic pseudo-random bytes.
func dmGuestData(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	data := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{'d', 'm'}).Read(data)
	p := filepath.Join(dir, "data.img")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, data
}

// dmGuestFormat builds the tree of dataPath into hashPath at off.
func dmGuestFormat(t *testing.T, dataPath, hashPath string, off int64, p verity.Params) *verity.Result {
	t.Helper()
	df, err := os.Open(dataPath)
	if err != nil {
		t.Fatal(err)
	}
	defer df.Close()
	hf, err := os.OpenFile(hashPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	r, err := verity.Format(df, 1<<20, hf, off, p)
	if err != nil {
		t.Fatalf("verity.Format: %v", err)
	}
	return r
}

// dmGuestRead reads n bytes of path, returning the first error.
func dmGuestRead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	_, err = f.ReadAt(b, 0)
	return b, err
}

// dmGuestLoopsFree waits (bounded) until no loop device is bound to a
// file under dir: the autoclear loops go once the dm device is removed.
func dmGuestLoopsFree(t *testing.T, dir string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
		var bound []string
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && strings.HasPrefix(string(b), dir) {
				bound = append(bound, f)
			}
		}
		if len(bound) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("loop devices still bound after close: %v", bound)
		}
	}
}

func TestGuestDMVerityOpen(t *testing.T) {
	dir := t.TempDir()
	dataPath, data := dmGuestData(t, dir)
	salt := []byte{0xde, 0xad, 0xbe, 0xef}
	tests := []struct {
		name  string
		hash  string // "" means the data file itself
		off   int64
		p     verity.Params
		flags []string
	}{
		{"superblock", "hash.img", 0, verity.Params{}, nil},
		{"same file", "", 1 << 20, verity.Params{}, []string{"--hash-offset", "1048576"}},
		{"no superblock", "raw.img", 0, verity.Params{NoSuperblock: true, Salt: salt, Hash: "sha1"},
			[]string{"--no-superblock", "--salt", hex.EncodeToString(salt), "--hash", "sha1", "--check-at-most-once"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hashPath := dataPath
			if tt.hash != "" {
				hashPath = filepath.Join(dir, tt.hash)
			} else {
				// A copy: the tree after the data of its own file.
				hashPath = filepath.Join(dir, "both.img")
				if err := os.WriteFile(hashPath, data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			dataArg := dataPath
			if tt.hash == "" {
				dataArg = hashPath
			}
			r := dmGuestFormat(t, dataArg, hashPath, tt.off, tt.p)
			args := append([]string{"verity", "open", "vcli", dataArg, hashPath, r.RootHashHex()}, tt.flags...)
			mustRun(t, args...)
			t.Cleanup(func() { dm.RemoveDevice("vcli") })
			got, err := dmGuestRead(dm.NodePath("vcli"), len(data))
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("read /dev/mapper/vcli: err %v, want the data file", err)
			}
			if st := mustRun(t, "dm", "status", "vcli"); st != "0 2048 verity V\n" {
				t.Errorf("dm status = %q, want %q", st, "0 2048 verity V\n")
			}
			if ls := mustRun(t, "dm", "ls"); !strings.HasPrefix(ls, "vcli\t(") {
				t.Errorf("dm ls = %q, want vcli", ls)
			}
			if tb := mustRun(t, "dm", "table", "vcli"); !strings.Contains(tb, r.RootHashHex()+" "+r.SaltHex()) {
				t.Errorf("dm table = %q, want root %s and salt %s", tb, r.RootHashHex(), r.SaltHex())
			}
			mustRun(t, "verity", "close", "vcli")
			if ls := mustRun(t, "dm", "ls"); ls != "No devices found\n" {
				t.Errorf("dm ls after close = %q, want none", ls)
			}
			dmGuestLoopsFree(t, dir)
		})
	}
}

// TestGuestDMVerityWrongRoot: like veritysetup, open does not read the
// data; the first read fails.
func TestGuestDMVerityWrongRoot(t *testing.T) {
	dir := t.TempDir()
	dataPath, data := dmGuestData(t, dir)
	hashPath := filepath.Join(dir, "hash.img")
	r := dmGuestFormat(t, dataPath, hashPath, 0, verity.Params{})
	wrong := bytes.Clone(r.RootHash)
	wrong[0] ^= 1
	mustRun(t, "verity", "open", "vbad", dataPath, hashPath, hex.EncodeToString(wrong))
	defer mustRun(t, "verity", "close", "vbad")
	if _, err := dmGuestRead(dm.NodePath("vbad"), len(data)); !errors.Is(err, unix.EIO) {
		t.Errorf("read with a wrong root hash: err = %v, want EIO", err)
	}
}

func TestGuestDMCreate(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := loop.Attach(img, loop.Config{Autoclear: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	key := strings.Repeat("0123456789abcdef", 8)
	mustRun(t, "dm", "create", "lin", "--table", "0 128 linear "+l.Path+" 8")
	mustRun(t, "dm", "create", "cr", "--table", "0 128 crypt aes-xts-plain64 "+key+" 0 "+l.Path+" 256")
	tableFile := filepath.Join(dir, "table")
	if err := os.WriteFile(tableFile, []byte("# read-only\n0 64 linear "+l.Path+" 0\n64 64 linear "+l.Path+" 1024\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "dm", "create", "ro", "--readonly", "--table-file", tableFile, "--uuid", "INITOS-TEST-ro")

	if got, want := mustRun(t, "dm", "table", "lin"), "0 128 linear 7:"; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, " 8\n") {
		t.Errorf("dm table lin = %q, want %q...8", got, want)
	}
	masked := mustRun(t, "dm", "table", "cr")
	if !strings.Contains(masked, " "+strings.Repeat("0", len(key))+" ") || strings.Contains(masked, key) {
		t.Errorf("dm table cr = %q, want the key masked", masked)
	}
	if shown := mustRun(t, "dm", "table", "--showkeys", "cr"); !strings.Contains(shown, key) {
		t.Errorf("dm table --showkeys cr = %q, want the key", shown)
	}
	if got := mustRun(t, "dm", "table", "ro"); strings.Count(got, "\n") != 2 {
		t.Errorf("dm table ro = %q, want two lines", got)
	}
	c, err := dm.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if info, err := c.Info("ro"); err != nil || !info.ReadOnly || info.UUID != "INITOS-TEST-ro" {
		t.Errorf("Info(ro) = %+v, %v, want read-only with UUID INITOS-TEST-ro", info, err)
	}
	if ls := mustRun(t, "dm", "ls"); strings.Count(ls, "\n") != 3 {
		t.Errorf("dm ls = %q, want 3 devices", ls)
	}
	var devs []dmDeviceJSON
	if err := json.Unmarshal([]byte(mustRun(t, "dm", "ls", "--json")), &devs); err != nil || len(devs) != 3 {
		t.Errorf("dm ls --json = %+v, %v, want 3 devices", devs, err)
	}
	var specs []dmSpecJSON
	if err := json.Unmarshal([]byte(mustRun(t, "dm", "table", "--json", "ro")), &specs); err != nil ||
		len(specs) != 2 || specs[1] != (dmSpecJSON{Start: 64, Length: 64, Type: "linear", Params: fmt.Sprintf("7:%d 1024", l.Number)}) {
		t.Errorf("dm table --json ro = %+v, %v, want two linear targets, the second at 64 mapping to offset 1024", specs, err)
	}
	if err := json.Unmarshal([]byte(mustRun(t, "dm", "status", "--json", "lin")), &specs); err != nil || len(specs) != 1 || specs[0].Type != "linear" {
		t.Errorf("dm status --json lin = %+v, %v, want one linear target", specs, err)
	}
	_, err = runCLI(t, "dm", "create", "bad", "--table", "0 8 no-such-target")
	if err == nil || !strings.Contains(err.Error(), "unknown target type") {
		t.Errorf("dm create with an unknown target = %v, want the kernel's message", err)
	}
	mustRun(t, "dm", "remove", "lin", "cr", "ro")
	if ls := mustRun(t, "dm", "ls"); ls != "No devices found\n" {
		t.Errorf("dm ls after remove = %q, want none", ls)
	}
	if _, err := runCLI(t, "dm", "remove", "lin"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dm remove of a removed device = %v, want not-exist", err)
	}
}
