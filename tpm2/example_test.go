package tpm2_test

import (
	"encoding/base64"
	"fmt"
	"log"

	"initos/tpm2"
)

// Seal a disk key to PCR 7 at enrollment, unseal it at boot.
func Example() {
	dev, err := tpm2.ParseDevice("auto") // or "swtpm:path=/run/swtpm.sock"
	if err != nil {
		log.Fatal(err)
	}
	tpm, err := tpm2.Open(dev)
	if err != nil {
		log.Fatal(err) // errors.Is(err, tpm2.ErrNoTPM) when there is none
	}
	defer tpm.Close()

	secret, sealed, err := tpm2.Seal(tpm, tpm2.SealOptions{PCRs: []int{7}})
	if err != nil {
		log.Fatal(err)
	}
	token, _ := tpm2.NewToken(sealed, 1).Marshal() // store in the LUKS2 header
	passphrase := base64.StdEncoding.EncodeToString(secret)
	_, _ = token, passphrase

	got, err := tpm2.Unseal(tpm, sealed, tpm2.UnsealOptions{})
	if err != nil {
		log.Fatal(err) // errors.Is(err, tpm2.ErrPolicyMismatch) after a different boot
	}
	fmt.Println(len(got))
}

func ExampleParsePCRs() {
	pcrs, err := tpm2.ParsePCRs("11+7")
	fmt.Println(pcrs, err, tpm2.FormatPCRs(pcrs))
	// Output: [7 11] <nil> 7+11
}

func ExamplePolicyPCRDigest() {
	zero := make([]byte, 32)
	d, _ := tpm2.PolicyPCRDigest(tpm2.SHA256, []int{11}, map[int][]byte{11: zero})
	fmt.Printf("%x\n", d) // = tpm2_createpolicy --policy-pcr -l sha256:11
	// Output: fd32fa22c52cfc8e1a0c29eb38519f87084cab0b04b0d8f020a4d38b2f4e223e
}
