package kmod

import (
	"fmt"
	"slices"
	"strings"
)

// Resolve returns the modules needed to load names (module names or
// aliases), in load order: every module after its dependencies and "pre:"
// soft dependencies, each module once. Built-in modules are included with
// Builtin set. Soft dependencies, and the modules of an alias that names
// several, are Optional. A name that cannot be found is a
// *NotFoundError; an unresolvable soft dependency is skipped.
func (ix *Index) Resolve(names ...string) ([]Module, error) {
	r := resolver{ix: ix, state: make(map[string]int), pos: make(map[string]int)}
	for _, name := range names {
		mods := ix.lookup(name)
		if len(mods) == 0 {
			return nil, &NotFoundError{Name: name, Dir: ix.dir}
		}
		// Several modules for one alias (crypto-aes: aesni_intel and
		// padlock_aes) are alternatives: each may fail to load.
		alt := len(mods) > 1
		for _, m := range mods {
			if err := r.visit(m, alt, name); err != nil {
				return nil, err
			}
		}
		if alt && !slices.ContainsFunc(mods, func(m string) bool { return r.state[m] == done }) {
			return nil, r.notFound(mods[0], name)
		}
	}
	return r.out, nil
}

// visit states.
const (
	unvisited = iota
	visiting
	done
)

type resolver struct {
	ix    *Index
	state map[string]int
	pos   map[string]int // index in out
	out   []Module
	stack []string // for cycle messages
}

// visit appends name after its dependencies. soft marks a module reached
// through a soft dependency; via is the name or alias that led to it.
func (r *resolver) visit(name string, soft bool, via string) error {
	switch r.state[name] {
	case done:
		if !soft {
			r.harden(name)
		}
		return nil
	case visiting:
		if soft {
			return nil // soft dependencies may loop; modprobe ignores that too
		}
		return fmt.Errorf("resolve module %s: dependency cycle: %s -> %s", r.stack[0], strings.Join(r.stack, " -> "), name)
	}
	e, loadable := r.ix.deps[name]
	if !loadable {
		if !r.ix.builtin[name] {
			if soft {
				return nil // unresolvable soft dependency: skipped, as modprobe does
			}
			return r.notFound(name, via)
		}
		r.emit(Module{Name: name, Builtin: true, Optional: soft})
		return nil
	}
	r.state[name] = visiting
	r.stack = append(r.stack, name)
	// depmod lists dependencies so that they load in reverse order.
	for i := len(e.deps) - 1; i >= 0; i-- {
		if err := r.visit(e.deps[i], soft, name); err != nil {
			return err
		}
	}
	for _, s := range r.ix.softPre[name] {
		for _, m := range r.ix.lookup(s) {
			if err := r.visit(m, true, name); err != nil {
				return err
			}
		}
	}
	r.stack = r.stack[:len(r.stack)-1]
	r.emit(Module{Name: name, Path: e.path, Optional: soft})
	return nil
}

// harden clears Optional on a module, reached before only as a soft
// dependency, and on its hard dependencies.
func (r *resolver) harden(name string) {
	i, ok := r.pos[name]
	if !ok || !r.out[i].Optional {
		return
	}
	r.out[i].Optional = false
	for _, d := range r.ix.deps[name].deps {
		r.harden(d)
	}
}

func (r *resolver) emit(m Module) {
	r.state[m.Name] = done
	r.pos[m.Name] = len(r.out)
	r.out = append(r.out, m)
}

// notFound builds the error for a module missing from the index; via is
// the module depending on it, or the alias naming it.
func (r *resolver) notFound(name, via string) error {
	e := &NotFoundError{Name: name, Dir: r.ix.dir}
	if via != name && via != "" {
		e.By = via
	}
	return e
}
