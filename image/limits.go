package image

import (
	"errors"
	"runtime"
)

// ErrLimit reports a layer or image over one of the Limits.
var ErrLimit = errors.New("limit exceeded")

// Limits bounds what one image may make the installer do. The zero value
// means the defaults given with each field.
type Limits struct {
	MaxLayers     int   // layers per image (default 256)
	MaxEntries    int64 // tar entries per image, all layers (default 4 Mi)
	MaxFileSize   int64 // bytes of one regular file (default 16 GiB)
	MaxTotalBytes int64 // uncompressed tar bytes per image, all layers (default 64 GiB)
	MaxXattrBytes int   // names + values of one entry's xattrs (default 256 KiB)

	// Workers writes regular files in parallel while the tar is read
	// sequentially (default 4 x GOMAXPROCS, at least 8).
	Workers int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.MaxLayers <= 0 {
		l.MaxLayers = 256
	}
	def(&l.MaxEntries, 4<<20)
	def(&l.MaxFileSize, 16<<30)
	def(&l.MaxTotalBytes, 64<<30)
	if l.MaxXattrBytes <= 0 {
		l.MaxXattrBytes = 256 << 10
	}
	if l.Workers <= 0 {
		l.Workers = max(8, 4*runtime.GOMAXPROCS(0))
	}
	return l
}
