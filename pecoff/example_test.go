package pecoff_test

import (
	"fmt"
	"log"
	"os"

	"initos/pecoff"
)

func ExampleBuildUKI() {
	stub, err := os.ReadFile("testdata/linuxx64.efi.stub")
	if err != nil {
		log.Fatal(err)
	}
	img, err := pecoff.BuildUKI(stub, pecoff.UKI{
		OSRelease: []byte("ID=initos\n"),
		Cmdline:   []byte("console=ttyS0"),
		Linux:     []byte("a kernel EFI image"),
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range img.Sections()[8:] {
		fmt.Printf("%-8s rva %#x size %d\n", s.Name, s.VirtualAddress, s.VirtualSize)
	}
	// Output:
	// .osrel   rva 0x19200 size 10
	// .cmdline rva 0x19400 size 13
	// .linux   rva 0x19600 size 18
}
