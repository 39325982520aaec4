package loop

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"initos/internal/testenv"

	"golang.org/x/sys/unix"
)

// writeImage writes size bytes of a position-dependent pattern.
func writeImage(t *testing.T, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i/512) ^ byte(i)
	}
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func attach(t *testing.T, path string, cfg Config) *Device {
	t.Helper()
	d, err := Attach(path, cfg)
	if err != nil {
		t.Fatalf("Attach(%s, %+v): %v", path, cfg, err)
	}
	t.Cleanup(func() {
		if err := d.Detach(); err != nil && !errors.Is(err, os.ErrClosed) {
			t.Errorf("Detach(%s): %v", d.Path, err)
		}
	})
	return d
}

func readAll(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

func TestAttach(t *testing.T) {
	testenv.RequireRoot(t)
	path, data := writeImage(t, 1<<20)
	tests := []struct {
		name string
		cfg  Config
		want []byte
	}{
		{"whole", Config{}, data},
		{"read-only", Config{ReadOnly: true}, data},
		{"offset+limit", Config{Offset: 4096, SizeLimit: 64 << 10}, data[4096 : 4096+64<<10]},
		{"direct-io 4k", Config{DirectIO: true, BlockSize: 4096}, data},
	}
	for _, legacy := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(tt.name+"/legacy="+strconv.FormatBool(legacy), func(t *testing.T) {
				forceLegacy = legacy
				t.Cleanup(func() { forceLegacy = false })
				d := attach(t, path, tt.cfg)
				if got := readAll(t, d.Path); !bytes.Equal(got, tt.want) {
					t.Errorf("read %s = %d bytes, want %d identical bytes", d.Path, len(got), len(tt.want))
				}
				info, err := d.Info()
				if err != nil {
					t.Fatal(err)
				}
				if info.ReadOnly != tt.cfg.ReadOnly || info.Offset != tt.cfg.Offset || info.SizeLimit != tt.cfg.SizeLimit {
					t.Errorf("Info() = %+v, want read-only %v offset %d sizelimit %d", info, tt.cfg.ReadOnly, tt.cfg.Offset, tt.cfg.SizeLimit)
				}
				if !strings.HasSuffix(path, info.BackingFile) {
					t.Errorf("Info().BackingFile = %q, want a suffix of %q", info.BackingFile, path)
				}
			})
		}
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	testenv.RequireRoot(t)
	path, _ := writeImage(t, 64<<10)
	d := attach(t, path, Config{ReadOnly: true})
	f, err := os.OpenFile(d.Path, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.Write(make([]byte, 512))
		f.Close()
	}
	if !errors.Is(err, unix.EROFS) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) {
		t.Errorf("write to read-only %s: err = %v, want EROFS/EPERM/EACCES", d.Path, err)
	}
}

func TestWriteThrough(t *testing.T) {
	testenv.RequireRoot(t)
	path, _ := writeImage(t, 64<<10)
	d := attach(t, path, Config{Offset: 512})
	msg := []byte("written through the loop device")
	if _, err := d.File().WriteAt(msg, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.File().Sync(); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, path)[512 : 512+len(msg)]
	if !bytes.Equal(got, msg) {
		t.Errorf("backing file at 512 = %q, want %q", got, msg)
	}
}

// TestAutoclear: once our descriptor closes, the kernel unbinds the file.
func TestAutoclear(t *testing.T) {
	testenv.RequireRoot(t)
	path, _ := writeImage(t, 64<<10)
	d, err := Attach(path, Config{Autoclear: true, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	backing := "/sys/block/loop" + strconv.Itoa(d.Number) + "/loop/backing_file"
	if _, err := os.Stat(backing); err != nil {
		t.Fatalf("after Attach: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// The release runs asynchronously on recent kernels: poll (bounded).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(backing); errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still bound after Close with Autoclear", d.Path)
		}
	}
}

func TestDetachByPath(t *testing.T) {
	testenv.RequireRoot(t)
	path, _ := writeImage(t, 64<<10)
	d, err := Attach(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	d.Close() // else ours is a second opener and the kernel defers the detach
	if err := Detach(d.Path); err != nil {
		t.Fatalf("Detach(%s): %v", d.Path, err)
	}
	if err := Detach(d.Path); !errors.Is(err, unix.ENXIO) {
		t.Errorf("second Detach(%s) = %v, want ENXIO", d.Path, err)
	}
}

// TestConcurrentAttach races attaches against each other: every one must
// get its own device.
func TestConcurrentAttach(t *testing.T) {
	testenv.RequireRoot(t)
	path, _ := writeImage(t, 64<<10)
	const n = 8
	devs := make(chan *Device, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			d, err := Attach(path, Config{ReadOnly: true})
			if err != nil {
				errs <- err
				return
			}
			devs <- d
		}()
	}
	seen := map[string]bool{}
	for range n {
		select {
		case err := <-errs:
			t.Errorf("Attach: %v", err)
		case d := <-devs:
			if seen[d.Path] {
				t.Errorf("device %s handed out twice", d.Path)
			}
			seen[d.Path] = true
			t.Cleanup(func() {
				if err := d.Detach(); err != nil {
					t.Errorf("Detach(%s): %v", d.Path, err)
				}
			})
		}
	}
}

func TestAttachErrors(t *testing.T) {
	testenv.RequireRoot(t)
	if _, err := Attach(filepath.Join(t.TempDir(), "missing"), Config{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Attach(missing) = %v, want ErrNotExist", err)
	}
	path, _ := writeImage(t, 4096)
	_, err := Attach(path, Config{BlockSize: 1000})
	if err == nil || !strings.Contains(err.Error(), "attach loop "+path) {
		t.Errorf("Attach(block size 1000) = %v, want an error naming the file", err)
	}
}

// TestMknodFromSysfs makes a node the way Attach does when /dev has none.
func TestMknodFromSysfs(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	tests := []struct {
		name, sysfs  string
		major, minor uint32
	}{
		{"fallback", filepath.Join(dir, "no-sysfs"), loopMajor, 99},
		{"from sysfs", writeFile(t, dir, "dev", "7:42\n"), 7, 42},
	}
	for _, tt := range tests {
		node := filepath.Join(dir, tt.name)
		if err := mknodFromSysfs(node, tt.sysfs, unix.S_IFBLK, loopMajor, 99); err != nil {
			t.Fatalf("mknodFromSysfs(%s): %v", tt.name, err)
		}
		var st unix.Stat_t
		if err := unix.Stat(node, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != unix.Mkdev(tt.major, tt.minor) {
			t.Errorf("%s: node mode %o rdev %d:%d, want block %d:%d", tt.name, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev), tt.major, tt.minor)
		}
		// An existing node is left alone.
		if err := mknodFromSysfs(node, tt.sysfs, unix.S_IFBLK, 1, 1); err != nil {
			t.Errorf("mknodFromSysfs(existing %s) = %v, want nil", tt.name, err)
		}
	}
	if err := mknodFromSysfs(filepath.Join(dir, "bad"), writeFile(t, dir, "bad-dev", "garbage"), unix.S_IFBLK, 7, 1); err == nil {
		t.Errorf("mknodFromSysfs(garbage sysfs) = nil, want an error")
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
