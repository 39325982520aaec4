package update

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/google/go-tpm/tpm2/transport"

	"initos/efivar"
	"initos/internal/updatetest"
	"initos/tpm2"
	"initos/tpm2/swtpmtest"
)

const testKernel = updatetest.Kernel

type (
	signer = updatetest.Signer
	build  = updatetest.Build
)

func loadSigner(t testing.TB, name string) signer { return updatetest.LoadSigner(t, name) }

func newBuild(t testing.TB, s signer, v uint64, id string) *build {
	return updatetest.NewBuild(t, s, v, id, 0)
}

func makeUKI(t testing.TB, s signer, cfg any) []byte { return updatetest.MakeUKI(t, s, cfg) }

// fakeHost is a System on directories: efivarfs, two ESPs.
type fakeHost struct {
	*System
	vars  *efivar.Dir
	esp   map[string]string // slot -> dir
	tpm   transport.TPM
	clock time.Time
}

var (
	partA = "6f3c2d1e-0000-4000-8000-00000000000a"
	partB = "6f3c2d1e-0000-4000-8000-00000000000b"
)

// newHost makes a host booted from slot active, whose db trusts s, with
// boot entries Boot0000 (A) and Boot0001 (B), BootOrder A then B, and a
// swtpm when withTPM.
func newHost(t testing.TB, s signer, active string, withTPM bool) *fakeHost {
	t.Helper()
	esp := map[string]string{"a": t.TempDir(), "b": t.TempDir()}
	esps := []ESP{
		{Slot: "a", Disk: "/dev/vda", Device: "/dev/vda1", Number: 1, PartUUID: partA, Start: 2048, Size: 1024000},
		{Slot: "b", Disk: "/dev/vda", Device: "/dev/vda2", Number: 2, PartUUID: partB, Start: 1026048, Size: 1024000},
	}
	h := newHostOn(t, s, active, esps, DirMounter{partA: esp["a"], partB: esp["b"]})
	h.esp = esp
	if withTPM {
		h.startTPM(t)
	}
	return h
}

// newHostOn makes a host on the given ESPs: efivarfs in a directory with
// a db trusting s, boot entries Boot0000 (A) and Boot0001 (B), BootOrder
// A then B, booted from slot active.
func newHostOn(t testing.TB, s signer, active string, esps []ESP, m Mounter) *fakeHost {
	t.Helper()
	h := &fakeHost{vars: &efivar.Dir{Path: t.TempDir()}, clock: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	h.System = &System{Vars: h.vars, ESPs: esps, Mounter: m, Now: func() time.Time { return h.clock }}
	db, err := efivar.AppendSignatureLists(nil, efivar.X509List(efivar.MustParseGUID("11111111-2222-4333-8444-555555555555"), s.Cert))
	if err != nil {
		t.Fatal(err)
	}
	must(t, h.vars.Set("db", efivar.ImageSecurityDB, efivar.AuthAttributes, db))
	must(t, h.vars.Set("SecureBoot", efivar.GlobalVariable, efivar.BootAttributes, []byte{1}))
	for _, e := range h.ESPs {
		if _, err := h.addEntry(e); err != nil {
			t.Fatal(err)
		}
	}
	must(t, efivar.SetBootOrder(h.vars, []uint16{0, 1}))
	h.boot(t, active)
	return h
}

// startTPM gives the host a swtpm.
func (h *fakeHost) startTPM(t testing.TB) {
	t.Helper()
	d, err := tpm2.ParseDevice(swtpmtest.Start(t).Device())
	if err != nil {
		t.Fatal(err)
	}
	tpm, err := tpm2.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tpm.Close() })
	h.tpm = tpm
	h.OpenTPM = func() (transport.TPMCloser, error) { return nopCloser{tpm}, nil }
}

type nopCloser struct{ transport.TPM }

func (nopCloser) Close() error { return nil }

// boot sets LoaderDevicePartUUID as systemd-stub does for slot, and
// consumes BootNext as the firmware does.
func (h *fakeHost) boot(t testing.TB, slot string) {
	t.Helper()
	u := strings.ToUpper(h.SlotESPs(slot)[0].PartUUID)
	var b []byte
	for _, c := range utf16.Encode([]rune(u + "\x00")) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	must(t, h.vars.Set("LoaderDevicePartUUID", loaderVendor, efivar.BootserviceAccess|efivar.RuntimeAccess, b))
	h.vars.Delete("BootNext", efivar.GlobalVariable)
}

// install puts a build on a slot's ESP, as the installer does.
func (h *fakeHost) install(t testing.TB, slot string, b *build) {
	t.Helper()
	d := h.esp[slot]
	for _, p := range []string{UKIPath, FallbackPath} {
		writeTestFile(t, joinESP(d, p), b.UKI)
	}
	writeTestFile(t, joinESP(d, b.Config.ModulesImage.File), b.Modules)
}

func writeTestFile(t testing.TB, p string, data []byte) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, data, 0o644))
}

// tree returns path -> SHA-256 of every file under dir.
func tree(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			sum := sha256.Sum256(b)
			rel, _ := filepath.Rel(dir, p)
			out[rel] = hex.EncodeToString(sum[:8])
		}
		return nil
	})
	return out
}

func keys(m map[string]string) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
