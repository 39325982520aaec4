//go:build vmguest

package boot

import (
	"crypto/sha256"
	"encoding/json"
	"os"
	"testing"

	"initos/enroll"
	"initos/internal/bootdisk/report"
	"initos/luks2"
	"initos/tpm2"
)

// TestGuestEnroll is the first boot of TestVMBoot's machine: the same
// firmware and db key as the real boots (so PCR 7 is theirs), in a UKI
// PCR-signed by the same key. It does what the installer does: for each
// volume of the plan, a TPM token with the default policy (signed PCR 11,
// PCR 7, PCR 15 all-zero) and, for the genuine ones, the binding.
func TestGuestEnroll(t *testing.T) {
	var plan report.EnrollPlan
	b, err := os.ReadFile(report.EnrollPlanPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &plan); err != nil {
		t.Fatal(err)
	}
	tpm, err := tpm2.Open(tpm2.Device{})
	if err != nil {
		t.Fatal(err)
	}
	defer tpm.Close()
	// The signed policy covers PCR 11 after "enter-initrd", as initos-init
	// measures it first.
	d := sha256.Sum256([]byte(PhaseEnterInitrd))
	if err := tpm2.ExtendPCR(tpm, tpm2.SHA256, PhasePCR, d[:]); err != nil {
		t.Fatal(err)
	}
	sig, err := os.ReadFile(DefaultPaths.PCRSignature)
	if err != nil {
		t.Fatalf("systemd-stub passed no .pcrsig: %v", err)
	}
	keyPEM, err := os.ReadFile(DefaultPaths.PCRPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := tpm2.ParsePublicKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pcrs, _ := tpm2.ReadPCRs(tpm, tpm2.SHA256, []int{7, 11, 15})
	t.Logf("PCR 7 %x, 11 %x, 15 %x", pcrs[7], pcrs[11], pcrs[15])
	for _, v := range plan.Volumes {
		f, err := os.OpenFile(v.Device, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		h, err := luks2.ReadHeader(f)
		if err != nil {
			t.Fatalf("%s: %v", v.Device, err)
		}
		vk, _, err := h.Unlock(f, []byte(v.Pass))
		if err != nil {
			t.Fatalf("%s: %v", v.Device, err)
		}
		e, err := enroll.Enroll(tpm, f, h, vk, enroll.DefaultPolicy(pub))
		if err != nil {
			t.Fatalf("%s: enroll: %v", v.Device, err)
		}
		if v.Bind {
			if _, err := enroll.Bind(tpm, f, h, vk, pub, sig); err != nil {
				t.Fatalf("%s: bind: %v", v.Device, err)
			}
		}
		vk.Destroy()
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		t.Logf("%s: LUKS %s: TPM token %d on keyslot %d, bound %v", v.Device, h.UUID(), e.Token, e.Keyslot, v.Bind)
	}
}
