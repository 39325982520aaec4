package enroll_test

import (
	"crypto/rsa"
	"log"
	"os"

	"initos/efivar"
	"initos/enroll"
	"initos/luks2"
	"initos/tpm2"
)

// The installer enrolls a volume; the initrd unlocks it, maps it and
// measures it into PCR 15.
func Example() {
	var pcrKey *rsa.PublicKey            // the owner's PCR 11 signing key (.pcrpkey); nil: no signed policy
	tpm, err := tpm2.Open(tpm2.Device{}) // /dev/tpmrm0, else /dev/tpm0
	if err != nil {
		log.Fatal(err)
	}
	defer tpm.Close()
	f, err := os.OpenFile("/dev/disk/by-partlabel/InitOS LUKS", os.O_RDWR, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	h, err := luks2.ReadHeader(f)
	if err != nil {
		log.Fatal(err)
	}

	// Install: refuse to bind PCR 7 while Secure Boot is off.
	p := enroll.DefaultPolicy(pcrKey) // PCR 7 + PCR 15 = 0 (+ signed PCR 11)
	efi, err := efivar.OpenEfivarfs(efivar.DefaultEfivarfs)
	if err != nil {
		log.Fatal(err)
	}
	if err := enroll.CheckSecureBoot(efi); err != nil {
		log.Fatal(err)
	}
	vk, _, err := h.Unlock(f, []byte("the installer's passphrase"))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := enroll.Enroll(tpm, f, h, vk, p); err != nil {
		log.Fatal(err)
	}
	key, _, err := enroll.AddRecoveryKey(f, h, vk)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("recovery key: %s", key) // shown once
	vk.Destroy()

	// Boot: unseal, map with dm-crypt, then measure the volume so nothing
	// later in this boot can unseal again.
	sig, _ := os.ReadFile("/.extra/tpm2-pcr-signature.json")
	vk, _, err = enroll.Unlock(tpm, f, h, enroll.UnlockOptions{Signature: sig})
	if err != nil {
		log.Fatal(err) // names the PCR that differs, e.g. "PCR 7 is …, expected …"
	}
	defer vk.Destroy()
	// ... h.Activate("root", f.Name(), vk, luks2.ActivateOptions{}) ...
	if err := enroll.MeasureVolume(tpm, h, "root", vk); err != nil {
		log.Fatal(err)
	}
}
