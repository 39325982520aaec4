//go:build vmguest

package enroll

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"strings"
	"testing"

	"initos/luks2"
	"initos/tpm2"
)

const vmDisk = "/dev/vda"

// vmSetup opens the guest's TPM (the kernel resource manager) and the
// LUKS2 disk.
func vmSetup(t *testing.T) (tpm interface {
	Send([]byte) ([]byte, error)
	Close() error
}, f *os.File, h *luks2.Header) {
	t.Helper()
	tpm, err := tpm2.Open(tpm2.Device{Path: tpm2.DefaultDevice})
	if err != nil {
		t.Fatalf("open %s: %v", tpm2.DefaultDevice, err)
	}
	t.Cleanup(func() { tpm.Close() })
	if f, err = os.OpenFile(vmDisk, os.O_RDWR, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if h, err = luks2.ReadHeader(f); err != nil {
		t.Fatal(err)
	}
	return tpm, f, h
}

func TestGuestEnrollUnlockMeasure(t *testing.T) {
	tpm, f, h := vmSetup(t)
	vk, _, err := h.Unlock(f, []byte(vmPass))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Enroll(tpm, f, h, vk, DefaultPolicy(nil)); err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	vk.Destroy()

	got, tok, err := Unlock(tpm, f, h, UnlockOptions{})
	if err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	defer got.Destroy()
	t.Logf("unlocked with token %d, keyslot %d; key mlock'ed: %v", tok.ID, tok.Keyslot, got.Locked())
	node, err := h.Activate("root", vmDisk, got, luks2.ActivateOptions{})
	if err != nil {
		t.Fatalf("Activate: %v", err)
	}
	defer luks2.Deactivate("root")
	checkMapping(t, node)

	if err := MeasureVolume(tpm, h, "root", got); err != nil {
		t.Fatalf("MeasureVolume: %v", err)
	}
	d, _ := VolumeDigest(tpm2.SHA256, "root", h.UUID(), got.Bytes())
	want := sha256.Sum256(append(make([]byte, 32), d...))
	pcr, err := tpm2.ReadPCRs(tpm, tpm2.SHA256, []int{15})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pcr[15], want[:]) {
		t.Errorf("PCR 15 after MeasureVolume = %x, want %x", pcr[15], want)
	}
	_, _, err = Unlock(tpm, f, h, UnlockOptions{})
	if !errors.Is(err, tpm2.ErrPolicyMismatch) || !strings.Contains(err.Error(), "PCR 15 is ") {
		t.Fatalf("second Unlock in the same boot = %v, want a PCR 15 mismatch", err)
	}
	t.Logf("second unlock refused: %v", err)
}

// checkMapping writes through the dm-crypt mapping and reads it back.
func checkMapping(t *testing.T, node string) {
	t.Helper()
	m, err := os.OpenFile(node, os.O_RDWR|os.O_SYNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	data := bytes.Repeat([]byte("initos enroll "), 4096/14+1)[:4096]
	if _, err := m.WriteAt(data, 0); err != nil {
		t.Fatalf("write %s: %v", node, err)
	}
	back := make([]byte, len(data))
	if _, err := m.ReadAt(back, 0); err != nil || !bytes.Equal(back, data) {
		t.Fatalf("read %s back: %v (equal %v)", node, err, bytes.Equal(back, data))
	}
}

func TestGuestUnlockNextBoot(t *testing.T) {
	tpm, f, h := vmSetup(t)
	pcr, err := tpm2.ReadPCRs(tpm, tpm2.SHA256, []int{15})
	if err != nil || !bytes.Equal(pcr[15], make([]byte, 32)) {
		t.Fatalf("PCR 15 at boot = %x, %v; want zero", pcr[15], err)
	}
	vk, _, err := Unlock(tpm, f, h, UnlockOptions{})
	if err != nil {
		t.Fatalf("Unlock on the next boot: %v", err)
	}
	vk.Destroy()
}
