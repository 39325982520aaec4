//go:build !linux

package verity

import "io"

// mapSourceFor maps files only on Linux.
func mapSourceFor(io.ReaderAt, int64) blockSource { return nil }
