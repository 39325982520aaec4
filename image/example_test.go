package image_test

import (
	"context"
	"fmt"
	"log"

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
