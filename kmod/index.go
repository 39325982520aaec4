package kmod

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// ErrNotFound is matched (errors.Is) by a *NotFoundError.
var ErrNotFound = errors.New("module not found")

// NotFoundError reports a module name that is neither a loadable module, an
// alias, nor built into the kernel.
type NotFoundError struct {
	Name string // as asked for
	Dir  string // the module directory searched
	By   string // for a dependency: the module that needs it; else ""
}

func (e *NotFoundError) Error() string {
	msg := fmt.Sprintf("module %s not found in %s (modules.dep, modules.alias, modules.builtin)", e.Name, e.Dir)
	if e.By != "" {
		msg += ", needed by " + e.By
	}
	return msg
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Module is one kernel module in load order.
type Module struct {
	Name     string // kernel name, '_' for '-': "dm_verity"
	Path     string // .ko file relative to the module directory; "" if Builtin
	Builtin  bool   // compiled into the kernel: nothing to load
	Optional bool   // only a "pre:" soft dependency or one of an alias's alternatives: load errors are ignored
}

// Index is the parsed module index of one kernel's module directory.
// It is immutable and safe for concurrent use.
type Index struct {
	dir            string
	deps           map[string]depEntry
	aliases        map[string][]string
	patterns       []aliasEntry
	softPre        map[string][]string
	builtin        map[string]bool
	builtinAliases map[string][]string
}

// Open reads the module index of modulesDir (e.g. /lib/modules/VERSION).
// modules.dep must exist; the other index files are optional.
func Open(modulesDir string) (*Index, error) {
	ix := &Index{dir: modulesDir}
	if err := ix.read(); err != nil {
		return nil, fmt.Errorf("open module index %s: %w", modulesDir, err)
	}
	return ix, nil
}

func (ix *Index) read() error {
	data, err := os.ReadFile(filepath.Join(ix.dir, "modules.dep"))
	if err != nil {
		return err
	}
	if ix.deps, err = parseDep(bytes.NewReader(data)); err != nil {
		return err
	}
	if data, err = readOptional(ix.dir, "modules.alias"); err != nil {
		return err
	}
	if ix.aliases, ix.patterns, err = parseAlias(bytes.NewReader(data)); err != nil {
		return err
	}
	if data, err = readOptional(ix.dir, "modules.softdep"); err != nil {
		return err
	}
	if ix.softPre, err = parseSoftdep(bytes.NewReader(data)); err != nil {
		return err
	}
	if data, err = readOptional(ix.dir, "modules.builtin"); err != nil {
		return err
	}
	if ix.builtin, err = parseBuiltin(bytes.NewReader(data)); err != nil {
		return err
	}
	if data, err = readOptional(ix.dir, "modules.builtin.modinfo"); err != nil {
		return err
	}
	ix.builtinAliases, err = parseBuiltinModinfo(data)
	return err
}

// readOptional returns the contents of dir/name, or nothing if it does not exist.
func readOptional(dir, name string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

// Dir returns the module directory the index was read from.
func (ix *Index) Dir() string { return ix.dir }

// lookup returns the modules a name or alias stands for, in modprobe's
// order of precedence; see the package documentation.
func (ix *Index) lookup(name string) []string {
	n := Normalize(name)
	if _, ok := ix.deps[n]; ok {
		return []string{n}
	}
	if mods := ix.aliases[n]; len(mods) > 0 {
		return mods
	}
	var mods []string
	for _, p := range ix.patterns {
		if ok, _ := path.Match(p.pattern, n); ok {
			mods = appendUnique(mods, p.module)
		}
	}
	if len(mods) > 0 {
		return mods
	}
	if mods := ix.builtinAliases[n]; len(mods) > 0 {
		return mods
	}
	if ix.builtin[n] {
		return []string{n}
	}
	return nil
}
