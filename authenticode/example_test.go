package authenticode_test

import (
	"crypto/x509"
	"fmt"
	"log"
	"os"

	"initos/authenticode"
	"initos/pecoff"
)

func ExampleSign() {
	stub, _ := os.ReadFile("../pecoff/testdata/linuxx64.efi.stub")
	keyPEM, _ := os.ReadFile("testdata/db.key")
	certPEM, _ := os.ReadFile("testdata/db.crt")
	key, err := authenticode.ParsePrivateKey(keyPEM)
	if err != nil {
		log.Fatal(err)
	}
	certs, err := authenticode.ParseCertificates(certPEM)
	if err != nil {
		log.Fatal(err)
	}
	img, err := pecoff.BuildUKI(stub, pecoff.UKI{Cmdline: []byte("quiet"), Linux: []byte("kernel")})
	if err != nil {
		log.Fatal(err)
	}
	if err := authenticode.Sign(img, key, certs[0], authenticode.SignOptions{}); err != nil {
		log.Fatal(err)
	}
	sig, err := authenticode.Verify(img, []*x509.Certificate{certs[0]})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sig.Signer.Subject.CommonName)
	// Output: InitOS test db
}
