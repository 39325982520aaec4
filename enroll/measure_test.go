package enroll

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"initos/internal/testenv"
	"initos/tpm2"
)

func TestVolumeIdentity(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"root", "cryptsetup:root:U"},
		{"luks-3f2a", "cryptsetup:luks-3f2a:U"},
		{"a:b", `cryptsetup:a\x3ab:U`},
		{`back\slash`, `cryptsetup:back\x5cslash:U`},
		{"tab\there", `cryptsetup:tab\x09here:U`},
		{"é", `cryptsetup:\xc3\xa9:U`},
		{"", "cryptsetup::U"},
	} {
		if got := VolumeIdentity(tc.name, "U"); got != tc.want {
			t.Errorf("VolumeIdentity(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestVolumeDigestOpenSSL: the HMAC equals what systemd's own test for
// tpm2-measure-pcr computes with openssl (HMAC-SHA256 keyed with the
// volume key over "cryptsetup:NAME:UUID").
func TestVolumeDigestOpenSSL(t *testing.T) {
	openssl := testenv.Tool(t, "openssl")
	vk := bytes.Repeat([]byte{0xa5, 0x5a}, 32)
	id := "3f2a9c1e-0000-4000-8000-000000000001"
	got, err := VolumeDigest(tpm2.SHA256, "root", id, vk)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(openssl, "dgst", "-sha256", "-mac", "HMAC", "-macopt", "hexkey:"+hex.EncodeToString(vk), "-hex")
	cmd.Stdin = strings.NewReader("cryptsetup:root:" + id)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(string(out[bytes.LastIndexByte(out, ' ')+1:]))
	if hex.EncodeToString(got) != want {
		t.Errorf("VolumeDigest = %x, openssl says %s", got, want)
	}
}

// TestMeasureVolume: PCR 15 becomes SHA-256(0^32 || HMAC(vk, identity))
// in the SHA-256 bank (and the SHA-1 bank is extended too), and a token
// bound to PCR 15 = 0 no longer unseals in this boot.
func TestMeasureVolume(t *testing.T) {
	_, tpm := testTPM(t)
	extend(t, tpm, 7, "secure boot on")
	f, h, vk := testVolume(t)
	if _, err := Enroll(tpm, f, h, vk, DefaultPolicy(nil)); err != nil {
		t.Fatal(err)
	}
	got, _, err := Unlock(tpm, f, h, UnlockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Destroy()
	banks, err := tpm2.AllocatedBanks(tpm, VolumePCR)
	if err != nil {
		t.Fatal(err)
	}
	sha1Before, _ := tpm2.ReadPCRs(tpm, tpm2.SHA1, []int{15})
	if err := MeasureVolume(tpm, h, "root", got); err != nil {
		t.Fatalf("MeasureVolume: %v", err)
	}
	d, _ := VolumeDigest(tpm2.SHA256, "root", h.UUID(), vk.Bytes())
	want := sha256.Sum256(append(make([]byte, 32), d...))
	if pcr := readPCR(t, tpm, 15); !bytes.Equal(pcr, want[:]) {
		t.Errorf("PCR 15 after MeasureVolume = %x, want %x", pcr, want)
	}
	t.Logf("allocated banks for PCR 15: %v", banks)
	if len(banks) > 1 {
		sha1After, _ := tpm2.ReadPCRs(tpm, tpm2.SHA1, []int{15})
		if bytes.Equal(sha1Before[15], sha1After[15]) {
			t.Errorf("MeasureVolume left the SHA-1 bank's PCR 15 unchanged")
		}
	}
	_, _, err = Unlock(tpm, f, h, UnlockOptions{})
	if !errors.Is(err, tpm2.ErrPolicyMismatch) || !strings.Contains(err.Error(), "PCR 15 is ") {
		t.Errorf("Unlock after MeasureVolume = %v, want a PCR 15 mismatch", err)
	}
}
