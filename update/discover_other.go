//go:build !linux

package update

import "errors"

// Paths are where Discover looks (Linux only).
type Paths struct{ Sys, Dev, Efivars, MountDir, TPM string }

// Discover is Linux only.
func Discover(p Paths) (*System, error) { return nil, errors.New("update: Linux only") }
