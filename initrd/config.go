package initrd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"initos/bootconfig"
	"initos/cpio"
	"initos/initramfs"
)

// maxInitrdEntry bounds one entry read back from an initrd.
const maxInitrdEntry = 256 << 20

// configEntry is the config's name inside the archive.
var configEntry = strings.TrimPrefix(bootconfig.Path, "/")

// ReadConfig returns the initrd config of an initrd image.
func ReadConfig(img []byte) (*bootconfig.Config, error) {
	var cfg *bootconfig.Config
	_, _, err := rewrite(img, func(h *cpio.Header, data []byte) error {
		if h.Name == configEntry {
			var err error
			cfg, err = bootconfig.Parse(data)
			return err
		}
		return nil
	})
	if err == nil && cfg == nil {
		err = fmt.Errorf("not a production initrd: no %s", bootconfig.Path)
	}
	return cfg, err
}

// UpdateConfig returns the initrd image img (one plain, gzip or zstd newc
// segment) with its initrd config changed by update: the other entries,
// their modes, the modification time and the compression are kept (zstd
// is written at the best level, the default of `initos initrd build`), so
// the result is what Build would have written with the new config.
func UpdateConfig(img []byte, update func(*bootconfig.Config) error) ([]byte, error) {
	var a initramfs.Archive
	found := false
	comp, mtime, err := rewrite(img, func(h *cpio.Header, data []byte) error {
		if h.Name != configEntry {
			return addEntry(&a, h, data)
		}
		cfg, err := bootconfig.Parse(data)
		if err != nil {
			return fmt.Errorf("%s: %w", bootconfig.Path, err)
		}
		if err := update(cfg); err != nil {
			return err
		}
		b, err := cfg.Marshal()
		if err != nil {
			return err
		}
		found = true
		a.AddFile(configEntry, 0o644, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update initrd config: %w", err)
	}
	if !found {
		return nil, fmt.Errorf("update initrd config: not a production initrd: no %s", bootconfig.Path)
	}
	a.ModTime = mtime
	if comp == initramfs.Zstd {
		comp = initramfs.ZstdBest // the reader cannot tell the levels apart
	}
	var out bytes.Buffer
	if err := a.WriteTo(&out, comp); err != nil {
		return nil, fmt.Errorf("update initrd config: %w", err)
	}
	return out.Bytes(), nil
}

// rewrite reads every entry of img and hands it to fn; it returns the
// image's compression and modification time.
func rewrite(img []byte, fn func(h *cpio.Header, data []byte) error) (initramfs.Compression, time.Time, error) {
	r := initramfs.NewReader(bytes.NewReader(img))
	var mtime time.Time
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, mtime, err
		}
		if h.Size > maxInitrdEntry {
			return 0, mtime, fmt.Errorf("entry %s: %d bytes", h.Name, h.Size)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return 0, mtime, fmt.Errorf("entry %s: %w", h.Name, err)
		}
		mtime = time.Unix(int64(h.MTime), 0).UTC()
		if err := fn(h, data); err != nil {
			return 0, mtime, err
		}
	}
	segs := r.Segments()
	if len(segs) != 1 {
		return 0, mtime, fmt.Errorf("%d segments: want one (an initrd written by initos initrd build)", len(segs))
	}
	return segs[0], mtime, nil
}

// addEntry adds an entry read from an archive to a.
func addEntry(a *initramfs.Archive, h *cpio.Header, data []byte) error {
	perm := fs.FileMode(h.Mode & 0o777)
	switch h.Mode & cpio.TypeMask {
	case cpio.TypeDir:
		if h.Name != "." {
			a.AddDir(h.Name, perm)
		}
	case cpio.TypeReg:
		a.AddFile(h.Name, perm, data)
	case cpio.TypeSymlink:
		a.AddSymlink(h.Name, h.Linkname)
	case cpio.TypeChar:
		a.AddCharDevice(h.Name, perm, h.RDevMajor, h.RDevMinor)
	default:
		return errors.New("entry " + h.Name + ": unsupported file type")
	}
	return nil
}
