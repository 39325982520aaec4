package build_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"initos/build"
)

// Build the boot artifacts of a host image, as `initos build` does.
func Example() {
	keys, err := build.LoadKeys("out/keys", "") // db.key, db.crt, pcr.key
	if err != nil {
		log.Fatal(err)
	}
	m, err := build.Build(context.Background(), build.Options{
		Source: "oci:out/images:debianhost", OutDir: "out/boot", Init: "out/initos-init",
		Cmdline:    "console=ttyS0",
		SigningKey: keys.DBKey, SigningCert: keys.DBCert, PCRKey: keys.PCRKey,
		Epoch: time.Unix(1700000000, 0),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s, root hash %s\n", m.Kernel.Release, m.ModulesImage.ESPPath, m.ModulesImage.RootHash)
}
