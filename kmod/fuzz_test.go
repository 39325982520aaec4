package kmod

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addSeeds adds the synthetic fixture file name and its real counterpart
// (first lines only) as fuzz seeds.
func addSeeds(f *testing.F, name string) {
	f.Helper()
	real, _ := filepath.Glob(filepath.Join("/lib/modules", "*", name))
	for _, p := range append([]string{filepath.Join("testdata/synthetic", name)}, real...) {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if len(data) > 4096 {
			data = data[:4096]
		}
		f.Add(data)
	}
	f.Add([]byte(""))
}

// FuzzParseDep checks modules.dep parsing never panics and that every
// accepted path stays inside the module directory.
func FuzzParseDep(f *testing.F) {
	addSeeds(f, "modules.dep")
	f.Add([]byte("a.ko: ../b.ko\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseDep(bytes.NewReader(data))
		if err != nil {
			return
		}
		for name, e := range m {
			if !filepath.IsLocal(e.path) || nameFromPath(e.path) != name {
				t.Fatalf("parseDep accepted path %q for %q", e.path, name)
			}
		}
		ix := &Index{dir: "x", deps: m}
		for name := range m {
			if mods, err := ix.Resolve(name); err == nil && len(mods) == 0 {
				t.Fatalf("Resolve(%q) = no modules, no error", name)
			}
		}
	})
}

// FuzzParseAlias checks the alias, softdep and builtin parsers never panic
// and that a resolved alias only yields indexed modules.
func FuzzParseAlias(f *testing.F) {
	addSeeds(f, "modules.alias")
	addSeeds(f, "modules.softdep")
	f.Add([]byte("alias a[ b\nalias x-* y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		exact, patterns, errA := parseAlias(bytes.NewReader(data))
		soft, errS := parseSoftdep(bytes.NewReader(data))
		builtin, errB := parseBuiltin(bytes.NewReader(data))
		bAliases, errM := parseBuiltinModinfo(data)
		if errA != nil || errS != nil || errB != nil || errM != nil {
			return
		}
		ix := &Index{dir: "x", deps: map[string]depEntry{"y": {path: "y.ko"}}, aliases: exact, patterns: patterns,
			softPre: soft, builtin: builtin, builtinAliases: bAliases}
		for _, line := range strings.Split(string(data), "\n") {
			for _, w := range strings.Fields(line) {
				mods, err := ix.Resolve(w)
				for _, m := range mods {
					if _, ok := ix.deps[m.Name]; !ok && !m.Builtin {
						t.Fatalf("Resolve(%q) = %+v: not in the index", w, m)
					}
				}
				_ = err
			}
		}
	})
}
