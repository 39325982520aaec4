package kmod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"
)

// Load loads the kernel module file path with the parameters params
// ("key=value key2=value2", may be empty). A module that is already loaded
// is not an error. Compressed modules (.ko.xz, .ko.zst, .ko.gz) are
// decompressed by the kernel when it can, else in memory.
func Load(path, params string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load module %s: %w", path, err)
	}
	defer f.Close()
	kind := compression(path)
	if kind == "" {
		return loadErr(path, "finit_module", unix.FinitModule(int(f.Fd()), params, 0))
	}
	err = unix.FinitModule(int(f.Fd()), params, unix.MODULE_INIT_COMPRESSED_FILE)
	switch {
	case err == nil, errors.Is(err, unix.EEXIST):
		return nil
	case !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOEXEC):
		return loadErr(path, "finit_module", err)
	}
	// The kernel predates MODULE_INIT_COMPRESSED_FILE (Linux 6.4) or was
	// built for another compression: decompress here.
	img, err := decompress(kind, f)
	if err != nil {
		return fmt.Errorf("load module %s: decompress: %w", path, err)
	}
	return loadErr(path, "init_module", unix.InitModule(img, params))
}

// loadErr turns the result of a module syscall into Load's error: nil for
// success and EEXIST, else an error naming the file, the call and the errno.
func loadErr(path, call string, err error) error {
	var errno unix.Errno
	switch {
	case err == nil, errors.Is(err, unix.EEXIST):
		return nil
	case errors.As(err, &errno):
		return fmt.Errorf("load module %s: %s: %s (%w)", path, call, unix.ErrnoName(errno), err)
	}
	return fmt.Errorf("load module %s: %s: %w", path, call, err)
}

// LoadAll resolves names (see Resolve) and loads the modules in order,
// skipping built-in ones. Errors loading an Optional module are ignored,
// but a name given to LoadAll that is an alias of several modules
// (alternatives such as crypto-aes) needs at least one of them loaded or
// built in. Any other error stops the loading.
func (ix *Index) LoadAll(names ...string) error {
	mods, err := ix.Resolve(names...)
	if err != nil {
		return err
	}
	ok := make(map[string]bool)
	failed := make(map[string]error)
	for _, m := range mods {
		if m.Builtin {
			ok[m.Name] = true
			continue
		}
		err := Load(filepath.Join(ix.dir, m.Path), "")
		switch {
		case err == nil:
			ok[m.Name] = true
		case !m.Optional:
			return err
		default:
			failed[m.Name] = err
		}
	}
	for _, name := range names {
		alts := ix.lookup(name)
		if len(alts) > 1 && !slices.ContainsFunc(alts, func(m string) bool { return ok[m] }) {
			return fmt.Errorf("load module %s: none of its modules %v loaded: %w", name, alts, firstErr(failed, alts))
		}
	}
	return nil
}

// firstErr returns the load error of the first of mods that has one.
func firstErr(failed map[string]error, mods []string) error {
	for _, m := range mods {
		if err := failed[m]; err != nil {
			return err
		}
	}
	return ErrNotFound
}
