package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"initos/squashfs"
)

// openImage opens a squashfs image file for reading.
func openImage(p string) (*squashfs.Reader, func(), error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	r, err := squashfs.NewReader(f, st.Size())
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", p, err)
	}
	return r, func() { f.Close() }, nil
}

// imagePath turns a PATH argument ("/etc/x", "etc/x", "/") into an fs.FS
// path.
func imagePath(p string) string {
	p = path.Clean("/" + p)
	if p == "/" {
		return "."
	}
	return p[1:]
}

// lsEntry is one --json entry of "sqfs ls".
type lsEntry struct {
	Path   string `json:"path"`
	Mode   string `json:"mode"`
	UID    uint32 `json:"uid"`
	GID    uint32 `json:"gid"`
	Size   int64  `json:"size"`
	Mtime  int64  `json:"mtime"`
	Nlink  uint32 `json:"nlink"`
	Target string `json:"target,omitempty"`
	Major  uint32 `json:"major,omitempty"`
	Minor  uint32 `json:"minor,omitempty"`
}

func sqfsLs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sqfs ls", stdout, stderr)
	long := fs.Bool("l", false, "long listing")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseFlags(fs, args, 1, 2)
	if err != nil {
		return err
	}
	r, done, err := openImage(pos[0])
	if err != nil {
		return fmt.Errorf("sqfs ls: %w", err)
	}
	defer done()
	start := "."
	if len(pos) == 2 {
		start = imagePath(pos[1])
	}
	w := bufio.NewWriter(stdout)
	var all []lsEntry
	err = r.WalkFrom(start, func(p string, in *squashfs.Inode) error {
		e := lsEntryOf(p, in)
		switch {
		case *asJSON:
			all = append(all, e)
		case *long:
			fmt.Fprintln(w, longLine(e, in))
		default:
			fmt.Fprintln(w, e.Path)
		}
		return ctx.Err()
	})
	if err != nil {
		w.Flush()
		return fmt.Errorf("sqfs ls: %w", err)
	}
	if *asJSON {
		return writeJSON(stdout, all)
	}
	return w.Flush()
}

func lsEntryOf(p string, in *squashfs.Inode) lsEntry {
	return lsEntry{Path: path.Clean("/" + p), Mode: lsModeString(in.Mode), UID: in.UID, GID: in.GID, Size: in.Size,
		Mtime: in.ModTime.Unix(), Nlink: in.Nlink, Target: in.Target, Major: in.Major, Minor: in.Minor}
}

// longLine formats an entry like unsquashfs -lln.
func longLine(e lsEntry, in *squashfs.Inode) string {
	size := fmt.Sprint(e.Size)
	if in.Mode&fs.ModeDevice != 0 {
		size = fmt.Sprintf("%d,%d", e.Major, e.Minor)
	}
	line := fmt.Sprintf("%s %d/%d %12s %s %s", e.Mode, e.UID, e.GID, size, in.ModTime.UTC().Format("2006-01-02 15:04"), e.Path)
	if e.Target != "" {
		line += " -> " + e.Target
	}
	return line
}

// lsModeString is ls -l's mode column.
func lsModeString(m fs.FileMode) string {
	var b strings.Builder
	switch m.Type() {
	case fs.ModeDir:
		b.WriteByte('d')
	case fs.ModeSymlink:
		b.WriteByte('l')
	case fs.ModeDevice:
		b.WriteByte('b')
	case fs.ModeDevice | fs.ModeCharDevice:
		b.WriteByte('c')
	case fs.ModeNamedPipe:
		b.WriteByte('p')
	case fs.ModeSocket:
		b.WriteByte('s')
	default:
		b.WriteByte('-')
	}
	rwx := []byte("rwxrwxrwx")
	for i := range rwx {
		if m&(1<<(8-i)) == 0 {
			rwx[i] = '-'
		}
	}
	for _, s := range []struct {
		bit       fs.FileMode
		i         int
		set, bare byte
	}{{fs.ModeSetuid, 2, 's', 'S'}, {fs.ModeSetgid, 5, 's', 'S'}, {fs.ModeSticky, 8, 't', 'T'}} {
		if m&s.bit != 0 {
			if rwx[s.i] == 'x' {
				rwx[s.i] = s.set
			} else {
				rwx[s.i] = s.bare
			}
		}
	}
	b.Write(rwx)
	return b.String()
}

func sqfsCat(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sqfs cat", stdout, stderr)
	pos, err := parseFlags(fs, args, 2, 2)
	if err != nil {
		return err
	}
	r, done, err := openImage(pos[0])
	if err != nil {
		return fmt.Errorf("sqfs cat: %w", err)
	}
	defer done()
	f, err := r.Open(imagePath(pos[1]))
	if err != nil {
		return fmt.Errorf("sqfs cat: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(stdout, f); err != nil {
		return fmt.Errorf("sqfs cat %s: %w", pos[1], err)
	}
	return nil
}

func sqfsExtract(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sqfs extract", stdout, stderr)
	noOwners := fs.Bool("no-owners", false, "do not chown (not done anyway unless root)")
	noXattrs := fs.Bool("no-xattrs", false, "do not set extended attributes")
	pos, err := parseFlags(fs, args, 2, 2)
	if err != nil {
		return err
	}
	r, done, err := openImage(pos[0])
	if err != nil {
		return fmt.Errorf("sqfs extract: %w", err)
	}
	defer done()
	if err := r.Extract(ctx, pos[1], squashfs.ExtractOptions{NoOwners: *noOwners, NoXattrs: *noXattrs}); err != nil {
		return fmt.Errorf("sqfs extract: %w", err)
	}
	return nil
}
