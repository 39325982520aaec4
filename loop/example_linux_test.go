package loop_test

import (
	"fmt"
	"log"

	"initos/loop"
)

// Attach an image read-only; the device goes away by itself once the last
// user (here: us; in the initrd: the dm-verity table) lets go.
func ExampleAttach() {
	dev, err := loop.Attach("/boot/efi/initos/usr.verity", loop.Config{ReadOnly: true, Autoclear: true})
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()
	fmt.Println("attached as", dev.Path)
}
