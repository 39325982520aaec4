package uki_test

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"os"

	"initos/pecoff"
	"initos/tpm2"
	"initos/uki"
)

// Build a UKI whose PCR 11 value is signed: a disk key sealed with
// tpm2.SealOptions{PublicKey: &key.PublicKey} unseals under any UKI this
// key signs.
func ExampleBuild() {
	stub, err := os.ReadFile("../pecoff/testdata/linuxx64.efi.stub")
	if err != nil {
		panic(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	img, err := uki.Build(stub, pecoff.UKI{
		OSRelease: []byte("ID=initos\n"), Cmdline: []byte("quiet"),
		Linux: []byte("not really a kernel"), Initrd: []byte("not really an initrd"),
	}, &uki.PCRSigning{Key: key})
	if err != nil {
		panic(err)
	}
	sig, err := tpm2.ParsePCRSignature(img.Section(".pcrsig"))
	if err != nil {
		panic(err)
	}
	fmt.Println(len(sig["sha256"]), "signed PCR 11 value, PCRs", sig["sha256"][0].PCRs)
	// Output: 1 signed PCR 11 value, PCRs [11]
}
