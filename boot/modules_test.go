package boot

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"initos/kmod"
)

func TestModuleLoader(t *testing.T) {
	dir := fakeModules(t)
	ix, err := kmod.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	l := newModuleLoader(func(p string) error {
		name := strings.TrimSuffix(filepath.Base(p), ".ko")
		mu.Lock()
		order = append(order, name)
		mu.Unlock()
		if name == "s" {
			return errors.New("s: ENODEV")
		}
		return nil
	})
	// a and c share b; s is c's soft dependency and fails (optional);
	// d is built in; nope resolves to nothing.
	res := l.loadAll(ix, []string{"pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00", "pci:v00008086d00002918sv00001AF4", "d", "nope"})
	for i, want := range []error{nil, nil, nil, kmod.ErrNotFound} {
		if !errors.Is(res[i].Err, want) && !(want == nil && res[i].Err == nil) {
			t.Errorf("result %d (%s) = %v, want %v", i, res[i].Name, res[i].Err, want)
		}
	}
	pos := func(m string) int { return slices.Index(order, m) }
	for _, m := range []string{"a", "b", "c", "s"} {
		if n := countOf(order, m); n != 1 {
			t.Errorf("module %s loaded %d times (order %q), want once", m, n, order)
		}
	}
	if pos("b") > pos("a") || pos("b") > pos("c") || pos("s") > pos("c") {
		t.Errorf("load order %q: b before a and c, s before c", order)
	}
	if n := countLoaded(res); n != 4 {
		t.Errorf("countLoaded = %d, want 4 (a, b, c, s)", n)
	}
	if !isNotFound(res[3].Err) || firstError(res) == nil || !strings.Contains(firstError(res).Error(), "module nope:") {
		t.Errorf("firstError = %v, want module nope not found", firstError(res))
	}
}

func TestModuleLoaderRequiredError(t *testing.T) {
	ix, err := kmod.Open(fakeModules(t))
	if err != nil {
		t.Fatal(err)
	}
	l := newModuleLoader(func(p string) error {
		if strings.HasSuffix(p, "/b.ko") {
			return errors.New("load module b.ko: finit_module: ENOEXEC")
		}
		return nil
	})
	res := l.loadAll(ix, []string{"fs-x", "pci:v00001AF4d00001042", "pci:v00008086d0"})
	if res[0].Err != nil {
		t.Errorf("fs-x = %v, want loaded", res[0].Err)
	}
	for _, r := range res[1:] {
		if r.Err == nil || !strings.Contains(r.Err.Error(), "ENOEXEC") {
			t.Errorf("%s = %v, want b's load error (a required dependency)", r.Name, r.Err)
		}
	}
}

func countOf(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// TestModuleLoaderGate: while the gate is held (a TPM policy session), no
// module load starts.
func TestModuleLoaderGate(t *testing.T) {
	ix, err := kmod.Open(fakeModules(t))
	if err != nil {
		t.Fatal(err)
	}
	loaded := make(chan string, 10)
	l := newModuleLoader(func(p string) error { loaded <- p; return nil })
	l.gate.Lock()
	done := make(chan struct{})
	go func() { l.loadAll(ix, []string{"fs-x"}); close(done) }()
	select {
	case p := <-loaded:
		t.Fatalf("module %s loaded while the gate was held", p)
	case <-time.After(100 * time.Millisecond):
	}
	l.gate.Unlock()
	<-done
	if len(loaded) != 1 {
		t.Errorf("%d loads after the gate opened, want 1", len(loaded))
	}
}
