//go:build !linux

package efivar

import "errors"

// OpenEfivarfs is only available on Linux.
func OpenEfivarfs(path string) (*Dir, error) {
	return nil, errors.New("open efivarfs: only on Linux")
}

func makeMutable(string) error { return nil }
