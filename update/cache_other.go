//go:build !linux

package update

// dropCache is a no-op outside Linux.
func dropCache(string) {}
