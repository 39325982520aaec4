package main

import (
	"fmt"
	"io"
	"os"

	"initos/verity"
)

// hashArea is what an in-place verity format overwrites in an existing
// file or device, saved so a failed or interrupted format leaves the
// target as it was:
//
//  1. the bytes of [off, end) that exist are copied to an unlinked
//     temporary file (the tree is about 1/128 of the data);
//  2. the superblock location is zeroed and synced, so that a crash
//     during the format never leaves an old superblock over a half-new
//     tree (verity.Format writes the new superblock last);
//  3. restore writes the saved bytes back, cuts a regular file back to its
//     old size and syncs.
type hashArea struct {
	f        *os.File
	regular  bool
	origSize int64
	off      int64
	saved    *os.File // nil when [off, end) held nothing
	savedLen int64
}

func saveHashArea(f *os.File, off, end int64) (*hashArea, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("size %s: %w", f.Name(), err)
	}
	a := &hashArea{f: f, regular: st.Mode().IsRegular(), origSize: size, off: off}
	n := min(end, size) - off
	if n <= 0 {
		return a, nil // nothing there yet: restore only cuts the file back
	}
	if err := a.save(n); err != nil {
		a.close()
		return nil, fmt.Errorf("save the hash area of %s: %w", f.Name(), err)
	}
	if err := a.invalidate(); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// save copies n bytes at off to an unlinked temporary file.
func (a *hashArea) save(n int64) error {
	tmp, err := os.CreateTemp("", ".initos-verity-area-*")
	if err != nil {
		return err
	}
	os.Remove(tmp.Name())
	a.saved, a.savedLen = tmp, n
	_, err = io.Copy(tmp, io.NewSectionReader(a.f, a.off, n))
	return err
}

// invalidate zeroes what would be read as a superblock at off (saved
// before).
func (a *hashArea) invalidate() error {
	n := min(int64(verity.SuperblockSize), a.savedLen)
	if _, err := a.f.WriteAt(make([]byte, n), a.off); err != nil {
		return fmt.Errorf("clear the old superblock of %s: %w", a.f.Name(), err)
	}
	return a.f.Sync()
}

// restore puts back the saved bytes and the old size.
func (a *hashArea) restore() error {
	if a.saved != nil {
		if _, err := io.Copy(io.NewOffsetWriter(a.f, a.off), io.NewSectionReader(a.saved, 0, a.savedLen)); err != nil {
			return err
		}
	}
	if a.regular {
		if err := a.f.Truncate(a.origSize); err != nil {
			return err
		}
	}
	return a.f.Sync()
}

func (a *hashArea) close() {
	if a.saved != nil {
		a.saved.Close()
	}
}
