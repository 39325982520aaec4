//go:build !linux

package image

import "errors"

// readDirSource is Linux-only (owners, device numbers and xattrs).
func readDirSource(root string, e *emitter) error {
	return errors.New("importing a directory is supported on Linux only")
}
