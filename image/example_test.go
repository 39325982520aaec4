package image_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"initos/image"
)

func Example() {
	// Pull an image into a store on btrfs and make a writable host root.
	s, err := image.Open("/x/images")
	if err != nil {
		log.Fatal(err)
	}
	im, stats, err := s.Pull(context.Background(), "docker.io/library/busybox:latest", image.HostPlatform())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(im.Digest, stats.Layers, "layers unpacked")
	root, err := s.Root(im.Digest, "host")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("root at", root)
}

func ExampleImport() {
	// Make a reproducible OCI image of an mmdebstrap root, then install it.
	epoch := time.Unix(1700000000, 0) // SOURCE_DATE_EPOCH
	res, err := image.Import(context.Background(), "/build/debian.tar.zst", "/build/layout",
		image.ImportOptions{Tag: "debianhost", Epoch: &epoch, Compression: image.Zstd})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("manifest", res.Manifest.Digest, "layer", res.Layer.Digest)
	s, err := image.Open("/x/images")
	if err != nil {
		log.Fatal(err)
	}
	if _, _, err := s.Pull(context.Background(), "oci:/build/layout:debianhost", image.HostPlatform()); err != nil {
		log.Fatal(err)
	}
}
