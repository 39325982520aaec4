//go:build !linux

package verity

import "io"

// mmapSourceFor maps files only on Linux.
func mmapSourceFor(io.ReaderAt) blockSource { return nil }
