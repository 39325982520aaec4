package uki

import (
	"crypto/rsa"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"initos/authenticode"
	"initos/efivar"
	"initos/internal/testenv"
	"initos/internal/vmtest"
	"initos/pecoff"
	"initos/tpm2"
)

// Tier 3: OVMF + swtpm + our UKIs, guest side in firmware_guest_test.go.

const (
	fwMarker    = "INITOS-PCR: "
	fwDataDisk  = "/dev/vdb" // the guest's view of the data disk
	snakeoilKey = "/usr/share/ovmf/PkKek-1-snakeoil.key"
	snakeoilPEM = "/usr/share/ovmf/PkKek-1-snakeoil.pem"
)

// fwRecord travels between boots on the data disk (u32 length, JSON): the
// sealed tokens, the secrets to compare with, and what each boot saw.
type fwRecord struct {
	PCR7Token    json.RawMessage `json:"pcr7_token,omitempty"`
	PCR7Secret   []byte          `json:"pcr7_secret,omitempty"`
	SignedToken  json.RawMessage `json:"signed_token,omitempty"`
	SignedSecret []byte          `json:"signed_secret,omitempty"`
	ClearPK      []byte          `json:"clear_pk,omitempty"` // signed empty PK update, from the host
	Boots        []fwBoot        `json:"boots"`
}

// fwBoot is what the guest observed on one boot.
type fwBoot struct {
	UKI        string `json:"uki"` // initos.uki= label in .cmdline
	SecureBoot int    `json:"secure_boot"`
	PCR7       string `json:"pcr7"`
	PCR11      string `json:"pcr11"`
}

// TestFirmwarePCRPolicies boots one machine (OVMF with Debian's snakeoil
// Secure Boot keys, one swtpm per boot on the same state, an ESP and a
// data disk) four times, each time our UKI built by Build and signed for
// Secure Boot, and on every boot compares the PCR 11 the guest reads with
// PredictPCR11 of that UKI:
//
//  1. UKI v1 (PCR key A): seal a secret to PCR 7, another to the signed
//     PCR 11 policy of key A;
//  2. UKI v2 (another .cmdline, key A): both unseal, no reseal;
//  3. UKI v3 (key B): PCR 7 unseals, the signed policy does not; then the
//     guest turns Secure Boot off, deleting PK with an update the host
//     signed with the snakeoil PK key;
//  4. UKI v2 on the same machine, now in setup mode: SecureBoot=0, PCR 7
//     differs and its secret is refused; the signed PCR 11 secret still
//     unseals.
//
// Debian's OVMF_CODE_4M.fd is no "Secure Boot off" firmware: it enforces
// Secure Boot too (without SMM) when the variable store has keys, and then
// PCR 7 is the same; clearing PK is what really turns it off.
func TestFirmwarePCRPolicies(t *testing.T) {
	if testing.Short() {
		t.Skip("tier 3: boots OVMF four times under TCG")
	}
	dir := t.TempDir()
	keyA, keyB := testKeys(t)
	fw := &fwBuilder{t: t, dir: dir, stub: readFile(t, testStub), predicted: map[string][]byte{}}
	fw.loadSnakeoil()
	esp := filepath.Join(dir, "esp.img")
	testenv.Run(t, "mkfs.vfat", "-C", "-n", "ESP", esp, "65536")
	testenv.Run(t, "mmd", "-i", esp, "::/EFI", "::/EFI/BOOT")
	data := filepath.Join(dir, "data.img")
	if err := os.WriteFile(data, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := vmtest.Config{Firmware: vmtest.OVMFSecureBoot(), TPM: true, Modules: []string{"efivarfs"},
		Disks: []vmtest.Disk{{Path: esp}, {Path: data}}}
	vm := vmtest.New(t, cfg)

	vm.RunBoot(t, "^TestGuestEnroll$", fw.boot(vm, "v1", keyA))
	fw.check(vm, "v1", 1)
	vm.RunBoot(t, "^TestGuestUpgrade$", fw.boot(vm, "v2", keyA))
	fw.check(vm, "v2", 1)
	fw.setClearPK(vm)
	vm.RunBoot(t, "^(TestGuestOtherKey|TestGuestDisableSecureBoot)$", fw.boot(vm, "v3", keyB))
	fw.check(vm, "v3", 1)
	vm.RunBoot(t, "^TestGuestNoSecureBoot$", fw.boot(vm, "v2", keyA))
	rec := fw.check(vm, "v2", 0)
	if len(rec.Boots) == 4 && rec.Boots[3].PCR7 == rec.Boots[1].PCR7 {
		t.Errorf("PCR 7 without Secure Boot = %s, the same as with it", rec.Boots[3].PCR7)
	}
}

// setClearPK puts into the record on the data disk an authenticated
// update that deletes PK (empty data), signed by the snakeoil PK.
func (fw *fwBuilder) setClearPK(vm *vmtest.VM) {
	t := fw.t
	certs, err := authenticode.ParseCertificates(fw.sbCert)
	if err != nil {
		t.Fatal(err)
	}
	rec := fw.record(vm)
	rec.ClearPK, err = efivar.SignUpdate("PK", efivar.GlobalVariable, efivar.AuthAttributes, time.Now(), nil, fw.sbKey, certs[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(vm.Machine.DiskPath(1), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)); err != nil {
		t.Fatal(err)
	}
}

// fwBuilder makes the UKIs of TestFirmwarePCRPolicies.
type fwBuilder struct {
	t         *testing.T
	dir       string
	stub      []byte
	sbKey     *rsa.PrivateKey
	sbCert    []byte
	predicted map[string][]byte // PCR 11 by UKI label
}

func (fw *fwBuilder) loadSnakeoil() {
	t := fw.t
	keyPEM := filepath.Join(fw.dir, "snakeoil.key")
	testenv.Run(t, "openssl", "pkey", "-in", snakeoilKey, "-passin", "pass:snakeoil", "-out", keyPEM)
	key, err := authenticode.ParsePrivateKey(readFile(t, keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("snakeoil key is %T, want RSA", key)
	}
	fw.sbKey, fw.sbCert = rk, readFile(t, snakeoilPEM)
}

// boot returns the harness hook that turns its kernel, initramfs and
// command line into UKI label, PCR-signed by pcrKey and Secure-Boot-signed
// by the snakeoil key, on vm's ESP as \EFI\BOOT\BOOTX64.EFI.
func (fw *fwBuilder) boot(vm *vmtest.VM, label string, pcrKey *rsa.PrivateKey) vmtest.BootFunc {
	return func(kernel, initrd, cmdline string) (vmtest.BootSpec, error) {
		t := fw.t
		img, err := Build(fw.stub, pecoff.UKI{
			OSRelease: []byte("ID=initos\nVERSION_ID=" + label + "\n"),
			Cmdline:   []byte(cmdline + " initos.uki=" + label),
			Linux:     readFile(t, kernel), Initrd: readFile(t, initrd),
		}, &PCRSigning{Key: pcrKey, Phases: [][]string{{}}}) // the guest tests run without phases
		if err != nil {
			return vmtest.BootSpec{}, err
		}
		certs, err := authenticode.ParseCertificates(fw.sbCert)
		if err != nil {
			return vmtest.BootSpec{}, err
		}
		if err := authenticode.Sign(img, fw.sbKey, certs[0], authenticode.SignOptions{}); err != nil {
			return vmtest.BootSpec{}, err
		}
		path := filepath.Join(fw.dir, label+".efi")
		if err := os.WriteFile(path, img.Bytes(), 0o644); err != nil {
			return vmtest.BootSpec{}, err
		}
		// The prediction comes from the file the firmware will load.
		f, err := os.Open(path)
		if err != nil {
			return vmtest.BootSpec{}, err
		}
		defer f.Close()
		if fw.predicted[label], err = tpm2.PredictPCR11(f); err != nil {
			return vmtest.BootSpec{}, err
		}
		testenv.Run(t, "mcopy", "-o", "-i", vm.Machine.DiskPath(0), path, "::/EFI/BOOT/BOOTX64.EFI")
		return vmtest.BootSpec{}, nil // Kernel empty: the firmware boots the ESP
	}
}

// check reads the record after a boot: that boot ran UKI label with the
// given SecureBoot, and its PCR 11 equals our prediction.
func (fw *fwBuilder) check(vm *vmtest.VM, label string, secureBoot int) fwRecord {
	t := fw.t
	t.Helper()
	rec := fw.record(vm)
	if len(rec.Boots) == 0 {
		t.Fatalf("boot of %s: no boot in the record on the data disk", label)
	}
	got := rec.Boots[len(rec.Boots)-1]
	want := hex.EncodeToString(fw.predicted[label])
	t.Logf("boot %d: UKI %s SecureBoot=%d PCR 11 %s (predicted %s) PCR 7 %s", len(rec.Boots), got.UKI, got.SecureBoot, got.PCR11, want, got.PCR7)
	if got.UKI != label || got.SecureBoot != secureBoot {
		t.Errorf("boot %d ran UKI %q with SecureBoot=%d, want %q with %d", len(rec.Boots), got.UKI, got.SecureBoot, label, secureBoot)
	}
	if got.PCR11 != want {
		t.Errorf("PCR 11 after systemd-stub booted %s = %s, PredictPCR11 = %s", label, got.PCR11, want)
	}
	return rec
}

// record reads the fwRecord on the data disk.
func (fw *fwBuilder) record(vm *vmtest.VM) fwRecord {
	t := fw.t
	t.Helper()
	b := readFile(t, vm.Machine.DiskPath(1))
	var rec fwRecord
	n := binary.BigEndian.Uint32(b)
	if n == 0 || int(n) > len(b)-4 {
		t.Fatalf("no record on the data disk (length %d)", n)
	}
	if err := json.Unmarshal(b[4:4+n], &rec); err != nil {
		t.Fatalf("parse the record on the data disk: %v", err)
	}
	return rec
}
