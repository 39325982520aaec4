package modimage_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"initos/modimage"
	"initos/squashfs"
)

// Build the modules image of a kernel, as `initos modules pack` does, and
// print what the initrd configuration records.
func Example() {
	release := "6.1.0-57-amd64" // the kernel the UKI carries
	out := filepath.Join("esp", "initos", modimage.FileName(release))
	res, err := modimage.BuildFile(context.Background(), out, modimage.Options{
		KernelDir:   "/lib/modules/" + release,
		FirmwareDir: "/lib/firmware",
		Squashfs:    squashfs.Options{Epoch: time.Unix(1700000000, 0)},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "%s root hash %s, hash offset %d, data size %d\n",
		res.FileName, res.RootHash, res.HashOffset, res.DataSize)
	// The initrd mounts it at /lib: modules in /lib/modules/<release>.
	fmt.Println(modimage.MountPoint + "/" + modimage.ModulesPath(release))
}
