// Package atomicfile writes files so that a reader, or the file system after
// a crash or power loss, sees either the old content or the whole new one,
// never a mix or a truncated file.
//
// The recipe (the one used everywhere in InitOS): create a temporary file in
// the destination's directory, write it, fsync it, rename it over the
// destination, fsync the directory. The temporary name starts with '.' and
// ends in ".tmp-*", so a leftover after a crash is recognisable and ignored.
//
// Private files (keys, key files, sealed secrets) are created with mode 0600
// from the start: the temporary file never exists with wider permissions.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// File is an output file being written. Write to it like an *os.File, then
// Commit to make it visible under its final name, or Abort to drop it.
// Abort after Commit does nothing, so `defer f.Abort()` is always safe.
type File struct {
	*os.File
	path string
	perm os.FileMode
	done bool
}

// Create starts writing path. perm is the final mode of the file (e.g.
// 0o644, or 0o600 for secrets); the umask does not apply.
func Create(path string, perm os.FileMode) (*File, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return &File{File: tmp, path: path, perm: perm}, nil
}

// Path returns the final name of the file.
func (f *File) Path() string { return f.path }

// Commit fsyncs the file, renames it to its final name and fsyncs the
// directory. On error the temporary file is removed and the destination is
// unchanged.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("commit %s: already committed or aborted", f.path)
	}
	f.done = true
	err := f.File.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.File.Name(), f.path)
	}
	if err != nil {
		os.Remove(f.File.Name())
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	if err := SyncDir(filepath.Dir(f.path)); err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return nil
}

// CommitAs is Commit under a final name known only once the content is
// written (a content-addressed blob named by its digest). path must be in
// the directory given to Create.
func (f *File) CommitAs(path string) error {
	if filepath.Dir(path) != filepath.Dir(f.path) {
		f.Abort()
		return fmt.Errorf("commit %s: not in the directory of %s", path, f.path)
	}
	f.path = path
	return f.Commit()
}

// Abort closes and removes the temporary file. The destination is
// unchanged. It does nothing after Commit or a previous Abort.
func (f *File) Abort() error {
	if f.done {
		return nil
	}
	f.done = true
	return errors.Join(f.File.Close(), os.Remove(f.File.Name()))
}

// WriteFile writes data to path atomically, with mode perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write creates path atomically with mode perm from what fill writes. When
// fill fails, nothing is left behind and the destination is unchanged.
func Write(path string, perm os.FileMode, fill func(w io.Writer) error) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := fill(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// SyncDir fsyncs a directory, making a rename or a new entry in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
