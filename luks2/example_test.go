package luks2_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"initos/luks2"
)

// Format a volume in an image file, then unlock it with its passphrase.
func Example() {
	dir, err := os.MkdirTemp("", "luks2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		log.Fatal(err)
	}
	if err := os.Truncate(img, 32<<20); err != nil {
		log.Fatal(err)
	}
	opts := luks2.FormatOptions{
		Label: "system",
		PBKDF: luks2.PBKDF{Type: "argon2id", Memory: 64, Parallel: 1, Iterations: 4},
	}
	if _, err := luks2.FormatFile(img, 0, []byte("correct horse"), opts); err != nil {
		log.Fatal(err)
	}

	f, err := os.Open(img)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	h, err := luks2.ReadHeader(f)
	if err != nil {
		log.Fatal(err)
	}
	key, slot, err := h.Unlock(f, []byte("correct horse"))
	if err != nil {
		log.Fatal(err)
	}
	defer key.Destroy()
	fmt.Println(h.Label(), "keyslot", slot, "volume key bits", key.Len()*8)
	// Output: system keyslot 0 volume key bits 512
}
