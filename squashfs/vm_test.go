package squashfs

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"initos/internal/vmtest"
	"initos/verity"
)

// vmParams tell the guest tests where the verity tree is.
type vmParams struct {
	RootHash   string
	HashOffset int64
	RawFile    string // name of the file whose raw block has a flipped bit on the second disk
}

const vmParamsPath = "/squashfs-vm.json"

// TestVM mounts our images in a VM running the Debian kernel, through
// dm-verity with the tree Options.Verity appends (`sqfs build --verity`):
// /dev/vda is intact, /dev/vdb has one bit flipped inside a file's data,
// /dev/vdc is an image of an empty directory (no directory table).
// The guest tests are in vm_guest_test.go.
func TestVM(t *testing.T) {
	dir := t.TempDir()
	nodes := sampleTree(DefaultBlockSize, true)
	img, res := buildImage(t, nodes, Options{Verity: &verity.Params{}})
	good, bad := filepath.Join(dir, "good.img"), filepath.Join(dir, "bad.img")
	if err := os.WriteFile(good, img, 0o644); err != nil {
		t.Fatal(err)
	}
	// "rand" is incompressible, so its blocks are stored raw: its bytes
	// can be found in the image and one of them flipped.
	var randData string
	for _, n := range nodes {
		if n.Path == "rand" {
			randData = n.Data
		}
	}
	at := bytes.Index(img, []byte(randData[1000:1064]))
	if at < 0 || int64(at) >= res.Size {
		t.Fatal("raw block of rand not found in the image")
	}
	flipped := bytes.Clone(img)
	flipped[at+10] ^= 0x40
	if err := os.WriteFile(bad, flipped, 0o644); err != nil {
		t.Fatal(err)
	}
	empty, _ := buildImage(t, nil, Options{})
	emptyPath := filepath.Join(dir, "empty.img")
	if err := os.WriteFile(emptyPath, empty, 0o644); err != nil {
		t.Fatal(err)
	}
	params := filepath.Join(dir, "params.json")
	b, _ := json.Marshal(vmParams{RootHash: res.Verity.RootHashHex(), HashOffset: res.Verity.HashOffset, RawFile: "rand"})
	if err := os.WriteFile(params, b, 0o644); err != nil {
		t.Fatal(err)
	}
	vmtest.Run(t, vmtest.Config{
		Modules: []string{"dm-verity", "squashfs"},
		Disks:   []vmtest.Disk{{Path: good, ReadOnly: true}, {Path: bad, ReadOnly: true}, {Path: emptyPath, ReadOnly: true}},
		Files:   map[string]string{vmParamsPath: params},
	})
}
