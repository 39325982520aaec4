//go:build !linux

package luks2

import "os"

const oExclDevice = 0

func isBusy(error) bool { return false }

func loopBacking(*os.File) (string, error) { return "", nil }
