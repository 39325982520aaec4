package boot

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"initos/kmod"
)

// moduleLoader loads kernel modules concurrently: each requested name is
// loaded by its own goroutine, its dependencies first (kmod.Resolve order,
// soft dependencies included), and a module shared by several names is
// loaded once while the others wait for it.
type moduleLoader struct {
	load func(path string) error // kmod.Load in the initrd; fakes in tests
	mu   sync.Mutex
	mods map[string]*moduleState // by module name
	// gate is held for reading by each load and for writing by TPM policy
	// sessions (quietTPM): a module load can extend a PCR (IMA), which
	// makes the TPM refuse a policy session with TPM_RC_PCR_CHANGED.
	gate sync.RWMutex
}

type moduleState struct {
	done chan struct{}
	err  error
}

func newModuleLoader(load func(path string) error) *moduleLoader {
	return &moduleLoader{load: load, mods: map[string]*moduleState{}}
}

// LoadResult is the outcome of loading one requested name.
type LoadResult struct {
	Name    string        // the name or alias asked for
	Modules []kmod.Module // what it resolved to, in load order
	Err     error         // nil, a *kmod.NotFoundError, or a load error
}

// loadAll resolves each name in ix and loads them concurrently. Errors of
// Optional modules (soft dependencies, alternatives) are ignored.
func (l *moduleLoader) loadAll(ix *kmod.Index, names []string) []LoadResult {
	res := make([]LoadResult, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		res[i].Name = name
		mods, err := ix.Resolve(name)
		if err != nil {
			res[i].Err = err
			continue
		}
		res[i].Modules = mods
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i].Err = l.loadChain(ix.Dir(), mods)
		}()
	}
	wg.Wait()
	return res
}

// loadChain loads mods in order, stopping at the first required failure.
func (l *moduleLoader) loadChain(dir string, mods []kmod.Module) error {
	for _, m := range mods {
		if m.Builtin {
			continue
		}
		if err := l.once(m.Name, filepath.Join(dir, m.Path)); err != nil && !m.Optional {
			return err
		}
	}
	return nil
}

// once loads the module at path unless it was loaded (or is loading)
// already, and returns the outcome of that load.
func (l *moduleLoader) once(name, path string) error {
	l.mu.Lock()
	s, ok := l.mods[name]
	if !ok {
		s = &moduleState{done: make(chan struct{})}
		l.mods[name] = s
	}
	l.mu.Unlock()
	if ok {
		<-s.done
		return s.err
	}
	l.gate.RLock()
	s.err = l.load(path)
	l.gate.RUnlock()
	close(s.done)
	return s.err
}

// firstError returns the first error of results, naming the module.
func firstError(results []LoadResult) error {
	for _, r := range results {
		if r.Err != nil {
			return fmt.Errorf("module %s: %w", r.Name, r.Err)
		}
	}
	return nil
}

// countLoaded returns how many distinct non-built-in modules results name.
func countLoaded(results []LoadResult) int {
	seen := map[string]bool{}
	for _, r := range results {
		for _, m := range r.Modules {
			if !m.Builtin && r.Err == nil {
				seen[m.Name] = true
			}
		}
	}
	return len(seen)
}

// isNotFound reports a name no module provides.
func isNotFound(err error) bool { return errors.Is(err, kmod.ErrNotFound) }
