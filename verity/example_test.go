package verity_test

import (
	"bytes"
	"fmt"
	"log"
	"os"

	"initos/verity"
)

// Format a 1 MiB image into a separate hash file, verify it, and print the
// device-mapper table that maps it.
func Example() {
	dir, _ := os.MkdirTemp("", "verity-example")
	defer os.RemoveAll(dir)
	data := bytes.Repeat([]byte("InitOS"), 1<<20/6+1)[:1<<20]
	hash, err := os.Create(dir + "/image.hash")
	if err != nil {
		log.Fatal(err)
	}
	defer hash.Close()

	uuid, _ := verity.ParseUUID("0e5a1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b")
	p := verity.Params{Salt: []byte("salt"), UUID: uuid} // sha256, 4096/4096
	r, err := verity.Format(bytes.NewReader(data), int64(len(data)), hash, 0, p)
	if err != nil {
		log.Fatal(err)
	}
	if err := r.Verify(bytes.NewReader(data), hash); err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.DataBlocks, "data blocks,", r.HashBlocks, "hash blocks")
	fmt.Println(r.Table("/dev/vda1", "/dev/vda2"))
	// Output:
	// 256 data blocks, 3 hash blocks
	// 0 2048 verity 1 /dev/vda1 /dev/vda2 4096 4096 256 1 sha256 3f40618e9ef6b391a7a1096af2e6ccc7e72abed2b9f0d9968b57dee9b5e970c3 73616c74
}
