package kmod

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"path"
	"strings"
)

// maxLine bounds one line of an index file; real modules.dep lines are a
// few kilobytes at most.
const maxLine = 1 << 20

// depEntry is one line of modules.dep.
type depEntry struct {
	path string   // relative to the module directory
	deps []string // normalized names, in modules.dep order
}

// aliasEntry is one "alias PATTERN MODULE" line of modules.alias.
type aliasEntry struct {
	pattern string // normalized
	module  string // normalized
}

// Normalize returns the kernel's name for a module: '-' replaced by '_'.
// Inside a bracket expression of an alias pattern ("[0-2]") the '-' is a
// range and is kept, as modprobe does.
func Normalize(name string) string {
	if !strings.ContainsRune(name, '-') {
		return name
	}
	b := []byte(name)
	inBracket := false
	for i, c := range b {
		switch {
		case c == '[':
			inBracket = true
		case c == ']':
			inBracket = false
		case c == '-' && !inBracket:
			b[i] = '_'
		}
	}
	return string(b)
}

// nameFromPath returns the normalized module name of a .ko path:
// "kernel/drivers/md/dm-verity.ko.xz" -> "dm_verity".
func nameFromPath(p string) string {
	base := path.Base(p)
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(base, ext) {
			base = strings.TrimSuffix(base, ext)
			break
		}
	}
	return Normalize(base)
}

// lines calls fn with each line (without its newline) and its 1-based number.
func lines(file string, r io.Reader, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		if err := fn(n, sc.Text()); err != nil {
			return fmt.Errorf("parse %s line %d: %w", file, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("parse %s after line %d: %w", file, n, err)
	}
	return nil
}

// parseDep parses modules.dep into a map from module name to its entry.
// Paths must stay inside the module directory (no "..", not absolute): the
// build machine copies the files they name into the initramfs.
func parseDep(r io.Reader) (map[string]depEntry, error) {
	m := make(map[string]depEntry)
	err := lines("modules.dep", r, func(n int, line string) error {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			return nil
		}
		mod, rest, ok := strings.Cut(line, ":")
		if !ok {
			return fmt.Errorf("missing ':' after module path")
		}
		if err := checkModPath(mod); err != nil {
			return err
		}
		name := nameFromPath(mod)
		if _, dup := m[name]; dup {
			return fmt.Errorf("module %s listed twice", name)
		}
		e := depEntry{path: mod}
		for _, d := range strings.Fields(rest) {
			if err := checkModPath(d); err != nil {
				return fmt.Errorf("dependency of %s: %w", mod, err)
			}
			e.deps = append(e.deps, nameFromPath(d))
		}
		m[name] = e
		return nil
	})
	return m, err
}

// checkModPath rejects module paths that are empty, absolute, leave the
// module directory, or do not name a .ko file.
func checkModPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty module path")
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("module path %q: absolute", p)
	case path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("module path %q: not a clean relative path", p)
	case nameFromPath(p) == path.Base(p):
		return fmt.Errorf("module path %q: not a .ko file", p)
	case strings.ContainsAny(p, " \t\x00"):
		return fmt.Errorf("module path %q: contains white space or NUL", p)
	}
	return nil
}

// parseAlias parses modules.alias into exact aliases (alias -> modules,
// in file order) and pattern aliases.
func parseAlias(r io.Reader) (map[string][]string, []aliasEntry, error) {
	exact := make(map[string][]string)
	var patterns []aliasEntry
	err := lines("modules.alias", r, func(n int, line string) error {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			return nil
		}
		if f[0] != "alias" || len(f) != 3 {
			return fmt.Errorf("want \"alias ALIAS MODULE\", got %d fields starting %q", len(f), f[0])
		}
		a, mod := Normalize(f[1]), Normalize(f[2])
		if strings.ContainsAny(a, "*?[") {
			if _, err := path.Match(a, ""); err != nil {
				return fmt.Errorf("alias pattern %q: %w", f[1], err)
			}
			patterns = append(patterns, aliasEntry{a, mod})
			return nil
		}
		exact[a] = appendUnique(exact[a], mod)
		return nil
	})
	return exact, patterns, err
}

// parseSoftdep parses modules.softdep into module -> "pre:" names (not yet
// resolved: they may be aliases). Several lines for one module are merged.
func parseSoftdep(r io.Reader) (map[string][]string, error) {
	pre := make(map[string][]string)
	err := lines("modules.softdep", r, func(n int, line string) error {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			return nil
		}
		if f[0] != "softdep" || len(f) < 2 {
			return fmt.Errorf("want \"softdep MODULE pre: ...\", got %q", line)
		}
		mod := Normalize(f[1])
		inPre := false
		for _, tok := range f[2:] {
			switch tok {
			case "pre:":
				inPre = true
			case "post:":
				inPre = false
			default:
				if inPre {
					pre[mod] = appendUnique(pre[mod], Normalize(tok))
				}
			}
		}
		return nil
	})
	return pre, err
}

// parseBuiltin parses modules.builtin (one module path per line).
func parseBuiltin(r io.Reader) (map[string]bool, error) {
	m := make(map[string]bool)
	err := lines("modules.builtin", r, func(n int, line string) error {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			return nil
		}
		m[nameFromPath(line)] = true
		return nil
	})
	return m, err
}

// parseBuiltinModinfo parses modules.builtin.modinfo (NUL-terminated
// "module.key=value" records) and returns alias -> built-in modules.
// Records that are not aliases are skipped; malformed ones are errors.
func parseBuiltinModinfo(data []byte) (map[string][]string, error) {
	m := make(map[string][]string)
	for i, rec := range bytes.Split(data, []byte{0}) {
		if len(rec) == 0 {
			continue
		}
		key, val, ok := bytes.Cut(rec, []byte("="))
		mod, field, ok2 := bytes.Cut(key, []byte("."))
		if !ok || !ok2 || len(mod) == 0 {
			return nil, fmt.Errorf("parse modules.builtin.modinfo record %d: want MODULE.KEY=VALUE, got %.40q", i+1, rec)
		}
		if string(field) == "alias" && len(val) > 0 {
			a := Normalize(string(val))
			m[a] = appendUnique(m[a], Normalize(string(mod)))
		}
	}
	return m, nil
}

func appendUnique(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}
