package squashfs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"initos/internal/testenv"
	"initos/verity"
)

// TestVerity: Options.Verity appends a tree after the padded image whose
// root hash is reproducible, which verity.Verify and `veritysetup verify`
// accept, and which catches a flipped bit.
func TestVerity(t *testing.T) {
	nodes := sampleTree(DefaultBlockSize, false)
	img, res := buildImage(t, nodes, Options{Verity: &verity.Params{}})
	v := res.Verity
	if v == nil {
		t.Fatal("Result.Verity = nil")
	}
	if v.HashOffset != res.Size || int64(v.DataBlocks)*4096 != res.Size || int64(len(img)) != v.HashEnd() {
		t.Errorf("verity: hash offset %d, data blocks %d, hash end %d; want %d, %d, %d (image %d bytes)",
			v.HashOffset, v.DataBlocks, v.HashEnd(), res.Size, res.Size/4096, len(img), len(img))
	}
	again, res2 := buildImage(t, nodes, Options{Verity: &verity.Params{}})
	if !bytes.Equal(img, again) || !bytes.Equal(res2.Verity.RootHash, v.RootHash) {
		t.Errorf("two builds: root hashes %s and %s, images equal %v; want identical", v.RootHashHex(), res2.Verity.RootHashHex(), bytes.Equal(img, again))
	}
	if err := v.Verify(bytes.NewReader(img), bytes.NewReader(img)); err != nil {
		t.Errorf("Verify: %v", err)
	}
	compareTrees(t, expected(nodes), readBack(t, img))

	vs := testenv.Tool(t, "veritysetup")
	path := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	off := "--hash-offset=" + strconv.FormatInt(res.Size, 10)
	if b, err := exec.Command(vs, "verify", path, path, v.RootHashHex(), off).CombinedOutput(); err != nil {
		t.Fatalf("veritysetup verify: %v\n%s", err, b)
	}
	bad := bytes.Clone(img)
	bad[res.Size/2] ^= 1
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(vs, "verify", path, path, v.RootHashHex(), off).CombinedOutput(); err == nil {
		t.Errorf("veritysetup verify of a flipped bit succeeded:\n%s", b)
	}
}
