package squashfs

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// AddFS adds every file of fsys (its root becomes the image root), in
// fs.WalkDir's lexical order. Owners come from the FileInfo when it is
// backed by stat(2) (os.DirFS on Linux), else they are 0; symlinks need
// fsys to implement fs.ReadLinkFS.
func (w *Writer) AddFS(fsys fs.FS) error {
	return fs.WalkDir(fsys, ".", func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("squashfs: %w", err)
		}
		fi, err := de.Info()
		if err != nil {
			return fmt.Errorf("squashfs: %w", err)
		}
		e := baseEntry(p, fi)
		e.UID, e.GID, _ = statOwner(fi)
		if fi.Mode()&fs.ModeSymlink != 0 {
			if e.Linkname, err = fs.ReadLink(fsys, p); err != nil {
				return fmt.Errorf("squashfs: %w", err)
			}
		}
		if !fi.Mode().IsRegular() {
			return w.Add(e, nil)
		}
		f, err := fsys.Open(p)
		if err != nil {
			return fmt.Errorf("squashfs: %w", err)
		}
		defer f.Close()
		return w.Add(e, f)
	})
}

// AddTar adds the entries of a tar stream (an OCI layer, `docker
// export`), in stream order: a later entry replaces an earlier one at the
// same path, as extraction would. Content streams from r into the
// compressors. PAX "SCHILY.xattr." records become extended attributes.
// Entries are taken literally: OCI whiteout files (".wh.") are the
// caller's to interpret (see Writer.Remove).
func (w *Writer) AddTar(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("squashfs: read tar: %w", err)
		}
		e, skip, err := TarEntry(h)
		if err != nil {
			return fmt.Errorf("squashfs: tar entry %s: %w", h.Name, err)
		}
		if skip {
			continue
		}
		if err := w.Add(e, tr); err != nil {
			return err
		}
	}
}

// TarEntry converts a tar header to an Entry, for callers that walk a tar
// stream themselves (to rename or filter paths, or apply OCI whiteouts)
// and pass the tar reader as the content. skip is true for headers that
// carry no file (a global PAX header).
func TarEntry(h *tar.Header) (e Entry, skip bool, err error) {
	e = Entry{Path: h.Name, Mode: fs.FileMode(h.Mode).Perm(), UID: uint32(h.Uid), GID: uint32(h.Gid), ModTime: h.ModTime}
	if h.Uid < 0 || h.Gid < 0 || int64(h.Uid) > 1<<32-1 || int64(h.Gid) > 1<<32-1 {
		return e, false, fmt.Errorf("owner %d:%d out of range", h.Uid, h.Gid)
	}
	m := h.FileInfo().Mode()
	e.Mode |= m & (fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		e.Size = h.Size
	case tar.TypeDir:
		e.Mode |= fs.ModeDir
	case tar.TypeSymlink:
		e.Mode |= fs.ModeSymlink
		e.Linkname = h.Linkname
	case tar.TypeLink:
		e.HardLink = h.Linkname
	case tar.TypeChar, tar.TypeBlock:
		e.Mode |= fs.ModeDevice
		if h.Typeflag == tar.TypeChar {
			e.Mode |= fs.ModeCharDevice
		}
		if h.Devmajor < 0 || h.Devminor < 0 || h.Devmajor > 1<<32-1 || h.Devminor > 1<<32-1 {
			return e, false, fmt.Errorf("device %d:%d out of range", h.Devmajor, h.Devminor)
		}
		e.Major, e.Minor = uint32(h.Devmajor), uint32(h.Devminor)
	case tar.TypeFifo:
		e.Mode |= fs.ModeNamedPipe
	case tar.TypeXGlobalHeader:
		return e, true, nil
	default:
		return e, false, fmt.Errorf("unsupported tar type %q", h.Typeflag)
	}
	for k, v := range h.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if e.Xattrs == nil {
				e.Xattrs = map[string]string{}
			}
			e.Xattrs[name] = v
		}
	}
	return e, false, nil
}
