package boot

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"initos/luks2"
)

// fakeTPM is a TPM for tests: PCRs as a map, extends as SHA-256 chains,
// per-volume keys and errors, and a record of the calls in order.
type fakeTPM struct {
	mu       sync.Mutex
	pcrs     map[int][]byte
	keys     map[string][]byte // volume UUID -> volume key
	unlock   map[string]error  // volume UUID -> UnlockVolume error
	binding  map[string]error  // volume UUID -> VerifyBinding error
	measured error             // MeasureVolume error
	calls    []string
	closed   bool
}

func newFakeTPM() *fakeTPM {
	return &fakeTPM{pcrs: map[int][]byte{}, keys: map[string][]byte{}, unlock: map[string]error{}, binding: map[string]error{}}
}

func (f *fakeTPM) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeTPM) extend(pcr int, digest []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.pcrs[pcr]
	if old == nil {
		old = make([]byte, 32)
	}
	sum := sha256.Sum256(append(append([]byte{}, old...), digest...))
	f.pcrs[pcr] = sum[:]
}

func (f *fakeTPM) MeasurePhase(phase string) error {
	f.record("phase %s", phase)
	d := sha256.Sum256([]byte(phase))
	f.extend(PhasePCR, d[:])
	return nil
}

func (f *fakeTPM) ReadPCRs(pcrs []int) (map[int][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int][]byte{}
	for _, p := range pcrs {
		v := f.pcrs[p]
		if v == nil {
			v = make([]byte, 32)
		}
		out[p] = v
	}
	return out, nil
}

func (f *fakeTPM) UnlockVolume(ctx context.Context, v *Volume, sig []byte) (*luks2.Secret, error) {
	f.record("unlock %s", v.UUID)
	if err := f.unlock[v.UUID]; err != nil {
		return nil, err
	}
	if f.pcrs[15] != nil {
		return nil, &PCRMismatchError{PCRs: []PCRMismatch{{PCR: 15, Expected: "00", Actual: "x"}}, Err: fmt.Errorf("policy")}
	}
	k, ok := f.keys[v.UUID]
	if !ok {
		return nil, fmt.Errorf("no token")
	}
	return luks2.SecretFrom(append([]byte{}, k...)), nil
}

func (f *fakeTPM) VerifyBinding(v *Volume, vk *luks2.Secret, sig, key []byte) error {
	f.record("binding %s", v.UUID)
	return f.binding[v.UUID]
}

func (f *fakeTPM) MeasureVolume(v *Volume, vk *luks2.Secret, pcr int) error {
	f.record("measure %s into %d", v.UUID, pcr)
	if f.measured != nil {
		return f.measured
	}
	f.extend(pcr, vk.Bytes())
	return nil
}

func (f *fakeTPM) Close() error { f.closed = true; return nil }

// writeFiles writes name -> contents under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeModules writes a module directory: a needs b, c needs b and has
// a soft dependency on s, s fails to load when asked to, d is built in;
// aliases for devices.
func fakeModules(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "6.1.0-test")
	writeFiles(t, dir, map[string]string{
		"kernel/a.ko": "a", "kernel/b.ko": "b", "kernel/c.ko": "c", "kernel/s.ko": "s", "kernel/x.ko": "x",
		"modules.dep":     "kernel/a.ko: kernel/b.ko\nkernel/b.ko:\nkernel/c.ko: kernel/b.ko\nkernel/s.ko:\nkernel/x.ko:\n",
		"modules.alias":   "alias pci:v00001AF4d00001042* a\nalias pci:v00008086d* c\nalias fs-x x\n",
		"modules.softdep": "softdep c pre: s\n",
		"modules.builtin": "kernel/d.ko\n",
	})
	return dir
}

// testenvCommand runs a tool found in PATH (checked by testenv.Tool first).
func testenvCommand(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }
