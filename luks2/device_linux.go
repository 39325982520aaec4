package luks2

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// oExclDevice is O_EXCL: on Linux, opening a block device with O_EXCL (and
// without O_CREAT) claims it exclusively and fails with EBUSY while it is
// in use; for regular files the flag has no effect.
const oExclDevice = unix.O_EXCL

func isBusy(err error) bool { return errors.Is(err, syscall.EBUSY) }

// loopBacking returns the loop device (e.g. "/dev/loop3") whose backing
// file is f, or "" when f is not a regular file or backs none, by
// comparing device and inode numbers with each bound loop device's
// /sys/block/loopN/loop/backing_file.
func loopBacking(f *os.File) (string, error) {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return "", err
	}
	want, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return "", nil
	}
	paths, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var bst unix.Stat_t
		if unix.Stat(strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)"), &bst) != nil {
			continue
		}
		if bst.Dev == want.Dev && bst.Ino == want.Ino {
			return "/dev/" + filepath.Base(filepath.Dir(filepath.Dir(p))), nil
		}
	}
	return "", nil
}
