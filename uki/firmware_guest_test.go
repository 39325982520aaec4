//go:build vmguest

package uki

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"initos/efivar"
	"initos/tpm2"
)

// Guest side of TestFirmwarePCRPolicies: our UKI booted by OVMF through
// systemd-stub 252, the kernel's TPM driver and resource manager
// (/dev/tpmrm0). systemd-stub hands .pcrsig and .pcrpkey to the initrd as
// /.extra/tpm2-pcr-signature.json and /.extra/tpm2-pcr-public-key.pem.

const (
	extraSig = "/.extra/tpm2-pcr-signature.json"
	extraKey = "/.extra/tpm2-pcr-public-key.pem"
	efivars  = "/sys/firmware/efi/efivars"
	sbVar    = efivars + "/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
)

// guestState is the fwRecord kept on the data disk, with the TPM.
type guestState struct {
	t   *testing.T
	tpm interface {
		Send([]byte) ([]byte, error)
		Close() error
	}
	rec fwRecord
}

// guestStart opens the TPM, reads the record and notes this boot: the UKI
// label from the command line, SecureBoot, PCR 7 and PCR 11.
func guestStart(t *testing.T) *guestState {
	t.Helper()
	tpm, err := tpm2.Open(tpm2.Device{})
	if err != nil {
		t.Fatalf("Open(auto): %v", err)
	}
	t.Cleanup(func() { tpm.Close() })
	g := &guestState{t: t, tpm: tpm}
	g.read()
	mountEfivarfs(t)
	pcrs, err := tpm2.ReadPCRs(tpm, tpm2.SHA256, []int{7, 11})
	if err != nil {
		t.Fatal(err)
	}
	b := fwBoot{UKI: cmdlineLabel(t), SecureBoot: secureBoot(t), PCR7: fmt.Sprintf("%x", pcrs[7]), PCR11: fmt.Sprintf("%x", pcrs[11])}
	t.Logf("%sUKI %s SecureBoot=%d PCR7=%s PCR11=%s", fwMarker, b.UKI, b.SecureBoot, b.PCR7, b.PCR11)
	g.rec.Boots = append(g.rec.Boots, b)
	t.Cleanup(g.write)
	return g
}

func cmdlineLabel(t *testing.T) string {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "initos.uki="); ok {
			return v
		}
	}
	t.Fatalf("no initos.uki= in /proc/cmdline %q: not booted from our UKI's .cmdline", b)
	return ""
}

func mountEfivarfs(t *testing.T) {
	var st unix.Statfs_t
	if err := unix.Statfs(efivars, &st); err == nil && st.Type == unix.EFIVARFS_MAGIC {
		return
	}
	if err := unix.Mount("efivarfs", efivars, "efivarfs", 0, ""); err != nil {
		t.Fatalf("mount efivarfs: %v", err)
	}
}

// secureBoot reads the SecureBoot variable (efivarfs: 4 attribute bytes,
// then the value).
func secureBoot(t *testing.T) int {
	b, err := os.ReadFile(sbVar)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil || len(b) != 5 {
		t.Fatalf("read SecureBoot: %q, %v", b, err)
	}
	return int(b[4])
}

func (g *guestState) read() {
	b, err := os.ReadFile(fwDataDisk)
	if err != nil {
		g.t.Fatal(err)
	}
	n := binary.BigEndian.Uint32(b)
	if n == 0 {
		return
	}
	if int(n) > len(b)-4 {
		g.t.Fatalf("record length %d exceeds the disk", n)
	}
	if err := json.Unmarshal(b[4:4+n], &g.rec); err != nil {
		g.t.Fatalf("parse record: %v", err)
	}
}

func (g *guestState) write() {
	b, err := json.Marshal(g.rec)
	if err != nil {
		g.t.Error(err)
		return
	}
	f, err := os.OpenFile(fwDataDisk, os.O_WRONLY, 0)
	if err != nil {
		g.t.Error(err)
		return
	}
	defer f.Close()
	if _, err := f.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)); err != nil {
		g.t.Error(err)
	}
	if err := f.Sync(); err != nil {
		g.t.Error(err)
	}
}

func readExtra(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("systemd-stub did not pass it to the initrd: %v", err)
	}
	return b
}

func (g *guestState) seal(opts tpm2.SealOptions) (token json.RawMessage, secret []byte) {
	g.t.Helper()
	secret, s, err := tpm2.Seal(g.tpm, opts)
	if err != nil {
		g.t.Fatalf("Seal(%+v): %v", opts, err)
	}
	tok, err := tpm2.NewToken(s, 0).Marshal()
	if err != nil {
		g.t.Fatal(err)
	}
	return tok, secret
}

func (g *guestState) unseal(token json.RawMessage, sig []byte) ([]byte, error) {
	g.t.Helper()
	tok, err := tpm2.ParseToken(token)
	if err != nil {
		g.t.Fatal(err)
	}
	s, err := tok.Sealed()
	if err != nil {
		g.t.Fatal(err)
	}
	return tpm2.Unseal(g.tpm, s, tpm2.UnsealOptions{Signature: sig})
}

func (g *guestState) wantUnseal(what string, token json.RawMessage, sig, want []byte) {
	g.t.Helper()
	got, err := g.unseal(token, sig)
	if err != nil || !bytes.Equal(got, want) {
		g.t.Errorf("Unseal(%s) = %x, %v, want the secret sealed on boot 1", what, got, err)
		return
	}
	g.t.Logf("Unseal(%s): OK", what)
}

func (g *guestState) wantRefused(what string, token json.RawMessage, sig []byte, target error) {
	g.t.Helper()
	got, err := g.unseal(token, sig)
	if !errors.Is(err, target) {
		g.t.Errorf("Unseal(%s) = %x, %v, want %v", what, got, err, target)
		return
	}
	g.t.Logf("Unseal(%s) refused: %v", what, err)
}

// TestGuestEnroll (boot 1, UKI v1, Secure Boot): seal one secret to PCR 7
// and one to the signed PCR 11 policy of the .pcrpkey key; the latter
// unseals at once with this UKI's .pcrsig.
func TestGuestEnroll(t *testing.T) {
	g := guestStart(t)
	if g.rec.Boots[0].SecureBoot != 1 {
		t.Errorf("SecureBoot = %d on the enrollment boot, want 1", g.rec.Boots[0].SecureBoot)
	}
	pub, err := tpm2.ParsePublicKeyPEM(readExtra(t, extraKey))
	if err != nil {
		t.Fatal(err)
	}
	g.rec.PCR7Token, g.rec.PCR7Secret = g.seal(tpm2.SealOptions{PCRs: []int{7}})
	g.rec.SignedToken, g.rec.SignedSecret = g.seal(tpm2.SealOptions{PCRs: []int{}, PublicKey: pub})
	g.wantUnseal("signed PCR 11, v1 .pcrsig", g.rec.SignedToken, readExtra(t, extraSig), g.rec.SignedSecret)
}

// TestGuestUpgrade (boot 2, UKI v2: other .cmdline, same PCR key, Secure
// Boot): both secrets unseal, the signed one with v2's .pcrsig, no reseal.
func TestGuestUpgrade(t *testing.T) {
	g := guestStart(t)
	g.wantUnseal("PCR 7", g.rec.PCR7Token, nil, g.rec.PCR7Secret)
	g.wantUnseal("signed PCR 11, v2 .pcrsig", g.rec.SignedToken, readExtra(t, extraSig), g.rec.SignedSecret)
}

// TestGuestOtherKey (boot 3, UKI v3 whose .pcrsig another key signed,
// Secure Boot): PCR 7 still unseals; the signed policy does not.
func TestGuestOtherKey(t *testing.T) {
	g := guestStart(t)
	g.wantUnseal("PCR 7", g.rec.PCR7Token, nil, g.rec.PCR7Secret)
	g.wantRefused("signed PCR 11, v3 .pcrsig of another key", g.rec.SignedToken, readExtra(t, extraSig), tpm2.ErrNoSignature)
}

// TestGuestDisableSecureBoot (boot 3): the owner turns Secure Boot off by
// deleting PK with an empty update signed by PK (snakeoil), made on the
// host; from the next boot the firmware is in setup mode, SecureBoot=0.
func TestGuestDisableSecureBoot(t *testing.T) {
	g := &guestState{t: t}
	g.read()
	mountEfivarfs(t)
	if len(g.rec.ClearPK) == 0 {
		t.Fatal("no signed PK deletion in the record")
	}
	store, err := efivar.OpenEfivarfs(efivars)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Set("PK", efivar.GlobalVariable, efivar.AuthAttributes, g.rec.ClearPK); err != nil {
		t.Fatalf("delete PK: %v", err)
	}
	if _, _, err := store.Get("PK", efivar.GlobalVariable); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("PK after the signed deletion: %v, want it gone", err)
	}
}

// TestGuestNoSecureBoot (boot 4, UKI v2, the same machine with Secure Boot
// off: same firmware, variable store, TPM and disks): the PCR 7 secret is
// refused; the signed PCR 11 one still unseals (PCR 11 only measures the
// UKI).
func TestGuestNoSecureBoot(t *testing.T) {
	g := guestStart(t)
	g.wantRefused("PCR 7", g.rec.PCR7Token, nil, tpm2.ErrPolicyMismatch)
	g.wantUnseal("signed PCR 11, v2 .pcrsig", g.rec.SignedToken, readExtra(t, extraSig), g.rec.SignedSecret)
}
