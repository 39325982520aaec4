package efivar_test

import (
	"fmt"
	"log"
	"os"

	"initos/efivar"
)

func ExampleAddBootEntry() {
	dir, err := os.MkdirTemp("", "efivars")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store := &efivar.Dir{Path: dir} // efivar.OpenEfivarfs("") on a real machine
	n, err := efivar.AddBootEntry(store, &efivar.LoadOption{
		Attributes:  efivar.LoadOptionActive,
		Description: "InitOS",
		FilePath: efivar.DevicePath{
			efivar.HardDriveNode(efivar.HardDrive{PartitionNumber: 1, PartitionStart: 2048, PartitionSize: 204800,
				PartitionSignature: efivar.MustParseGUID("0fc63daf-8483-4772-8e79-3d69d8477de4"),
				PartitionFormat:    efivar.PartitionFormatGPT, SignatureType: efivar.SignatureTypeGUID}),
			efivar.FilePathNode(`\EFI\Linux\initos.efi`),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := efivar.SetBootNext(store, n); err != nil {
		log.Fatal(err)
	}
	o, _ := efivar.ReadBootEntry(store, n)
	fmt.Println(efivar.BootName(n), o.Description, o.FilePath)
	// Output: Boot0000 InitOS HD(1,GPT,0fc63daf-8483-4772-8e79-3d69d8477de4,0x800,0x32000)/\EFI\Linux\initos.efi
}
