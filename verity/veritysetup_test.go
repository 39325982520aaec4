package verity

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"initos/internal/testenv"
)

// diffCase is one veritysetup format configuration.
type diffCase struct {
	hash     string
	dbs, hbs uint32
	size     int64 // data bytes
	salt     string
	noSB     bool
	offset   int64
	chromeOS bool
}

func (c diffCase) String() string {
	return fmt.Sprintf("%s-d%d-h%d-n%d-salt%d-nosb%v-off%d-f%d", c.hash, c.dbs, c.hbs, c.size, len(c.salt), c.noSB, c.offset, c.format())
}

func (c diffCase) format() int {
	if c.chromeOS {
		return 0
	}
	return 1
}

// args are the veritysetup options of the case.
func (c diffCase) args() []string {
	a := []string{"--hash", c.hash, "--data-block-size", strconv.Itoa(int(c.dbs)),
		"--hash-block-size", strconv.Itoa(int(c.hbs)), "--format", strconv.Itoa(c.format()),
		"--salt", c.salt}
	if c.noSB {
		a = append(a, "--no-superblock")
	}
	if c.offset != 0 {
		a = append(a, "--hash-offset", strconv.FormatInt(c.offset, 10))
	}
	return a
}

func (c diffCase) params() Params {
	p := Params{Hash: c.hash, DataBlockSize: c.dbs, HashBlockSize: c.hbs, NoSuperblock: c.noSB, ChromeOS: c.chromeOS}
	if c.salt == "-" {
		p.NoSalt = true
	} else {
		p.Salt, _ = hex.DecodeString(c.salt)
	}
	if !c.noSB {
		p.UUID, _ = ParseUUID(diffUUID)
	}
	return p
}

const diffUUID = "2a4f6c8e-1b3d-4e5f-9a7b-c9d8e7f6a5b4"

// diffCases is a matrix over hash, block sizes, format and size, with salt,
// superblock and hash offset varied along it.
func diffCases() []diffCase {
	salts := []string{"-", "a1b2c3", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}
	sizes := []struct{ blocks, extra int64 }{{1, 0}, {7, 100}, {300, 0}}
	var cs []diffCase
	i := 0
	for _, h := range []string{"sha256", "sha1", "sha512"} {
		for _, bs := range [][2]uint32{{4096, 4096}, {512, 1024}, {1024, 512}, {65536, 512}} {
			for _, f := range []bool{false, true} {
				for _, sz := range sizes {
					c := diffCase{hash: h, dbs: bs[0], hbs: bs[1], size: sz.blocks*int64(bs[0]) + sz.extra,
						salt: salts[i%3], noSB: i%2 == 1, chromeOS: f}
					if i%4 >= 2 {
						c.offset = 4 * int64(c.hbs)
					}
					if bs[0] == 65536 && sz.blocks == 300 {
						c.size = 20*65536 + 1 // keep the matrix small
					}
					cs = append(cs, c)
					i++
				}
			}
		}
	}
	// Superblock at an offset that is not a hash block multiple, and the
	// largest hash blocks.
	return append(cs,
		diffCase{hash: "sha256", dbs: 4096, hbs: 4096, size: 300 * 4096, salt: salts[2], offset: 1536},
		diffCase{hash: "sha256", dbs: 4096, hbs: 65536, size: 3000*4096 + 7, salt: salts[1]},
		diffCase{hash: "sha1", dbs: 512, hbs: 65536, size: 5000 * 512, salt: salts[0], noSB: true, chromeOS: true})
}

var rootRE = regexp.MustCompile(`(?m)^Root hash:\s+([0-9a-f]+)$`)

func TestVeritysetupDifferential(t *testing.T) {
	vs := testenv.Tool(t, "veritysetup")
	for _, c := range diffCases() {
		t.Run(c.String(), func(t *testing.T) {
			t.Parallel()
			diffOne(t, vs, c)
		})
	}
}

// diffOne formats case c with veritysetup and with Format, and checks the
// two agree on the tree, on verification and on corruption.
func diffOne(t *testing.T, vs string, c diffCase) {
	dir := t.TempDir()
	dataPath := filepath.Join(dir, "data")
	data := make([]byte, c.size)
	rand.NewChaCha8([32]byte{byte(c.size), byte(c.dbs >> 9)}).Read(data)
	writeFile(t, dataPath, data)

	// 1. veritysetup format, then ours on the same inputs.
	theirPath := filepath.Join(dir, "theirs")
	args := append([]string{"format", dataPath, theirPath}, c.args()...)
	if !c.noSB {
		args = append(args, "--uuid", diffUUID)
	}
	out := runTool(t, vs, args...)
	m := rootRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("veritysetup format printed no root hash:\n%s", out)
	}
	theirRoot := string(m[1])
	ourPath := filepath.Join(dir, "ours")
	r := formatFile(t, dataPath, ourPath, c.offset, c.params())

	// 2. Same root hash, same bytes.
	if got := r.RootHashHex(); got != theirRoot {
		t.Errorf("Format root = %s, want veritysetup's %s", got, theirRoot)
	}
	ours, theirs := readFile(t, ourPath), readFile(t, theirPath)
	if !bytes.Equal(ours, theirs) {
		t.Errorf("Format hash file (%d bytes) differs from veritysetup's (%d bytes)", len(ours), len(theirs))
	}

	// 3. veritysetup verify accepts ours; we accept theirs.
	runTool(t, vs, append([]string{"verify", dataPath, ourPath, theirRoot}, c.args()...)...)
	root, _ := hex.DecodeString(theirRoot)
	f := openFile(t, theirPath)
	rt, err := Open(f, c.offset, c.size, c.params(), root)
	if err != nil {
		t.Fatalf("Open(veritysetup's tree) = %v", err)
	}
	if err := rt.Verify(bytes.NewReader(data), f); err != nil {
		t.Errorf("Verify(veritysetup's tree) = %v, want nil", err)
	}

	// 4. Both reject a flipped byte in the leaf level, which we locate.
	if len(rt.Levels) > 0 {
		bad := bytes.Clone(ours)
		leaf := rt.Levels[0]
		bad[int64(leaf.Start+leaf.Blocks-1)*int64(c.hbs)] ^= 1
		badPath := filepath.Join(dir, "bad")
		writeFile(t, badPath, bad)
		wantCorrupt(t, rt.Verify(bytes.NewReader(data), bytes.NewReader(bad)), 0, leaf.Blocks-1)
		wantRejected(t, vs, c, "hash block", dataPath, badPath, theirRoot)
	}

	// 5. Both reject a flipped data byte, which we locate.
	if c.size >= 2*int64(c.dbs) {
		blk := rt.DataBlocks - 1
		data[int64(blk)*int64(c.dbs)+1] ^= 1
		writeFile(t, dataPath, data)
		wantCorrupt(t, rt.Verify(bytes.NewReader(data), f), DataLevel, blk)
		wantRejected(t, vs, c, "data block", dataPath, ourPath, theirRoot)
	}
}

// wantRejected checks veritysetup verify fails on a corrupt data or hash
// block (what).
func wantRejected(t *testing.T, vs string, c diffCase, what, dataPath, hashPath, root string) {
	t.Helper()
	cmd := exec.Command(vs, append([]string{"verify", dataPath, hashPath, root}, c.args()...)...)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("veritysetup verify accepted a corrupt %s:\n%s", what, out)
	}
}

func formatFile(t *testing.T, dataPath, hashPath string, off int64, p Params) *Result {
	t.Helper()
	df := openFile(t, dataPath)
	hf, err := os.Create(hashPath)
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	st, _ := df.Stat()
	r, err := Format(df, st.Size(), hf, off, p)
	if err != nil {
		t.Fatalf("Format(%s) = %v", dataPath, err)
	}
	return r
}

// TestVeritysetupSameFile puts the tree after the data in one file.
func TestVeritysetupSameFile(t *testing.T) {
	vs := testenv.Tool(t, "veritysetup")
	dir := t.TempDir()
	const blocks, off = 100, 100 * 4096
	data := make([]byte, off)
	rand.NewChaCha8([32]byte{9}).Read(data)
	theirs, ours := filepath.Join(dir, "theirs.img"), filepath.Join(dir, "ours.img")
	writeFile(t, theirs, data)
	writeFile(t, ours, data)
	out := runTool(t, vs, "format", theirs, theirs, "--hash-offset", strconv.Itoa(off), "--data-blocks",
		strconv.Itoa(blocks), "--salt", "abcd", "--uuid", diffUUID)
	f, err := os.OpenFile(ours, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u, _ := ParseUUID(diffUUID)
	r, err := Format(f, off, f, off, Params{Salt: []byte{0xab, 0xcd}, UUID: u})
	if err != nil {
		t.Fatal(err)
	}
	if m := rootRE.FindSubmatch(out); m == nil || string(m[1]) != r.RootHashHex() {
		t.Errorf("Format(same file) root = %s, veritysetup printed:\n%s", r.RootHashHex(), out)
	}
	if !bytes.Equal(readFile(t, ours), readFile(t, theirs)) {
		t.Errorf("Format(same file) bytes differ from veritysetup's")
	}
	runTool(t, vs, "verify", ours, ours, r.RootHashHex(), "--hash-offset", strconv.Itoa(off))
}

// TestVeritysetupTooSmall: both refuse data smaller than one block.
func TestVeritysetupTooSmall(t *testing.T) {
	vs := testenv.Tool(t, "veritysetup")
	dir := t.TempDir()
	dataPath := filepath.Join(dir, "data")
	writeFile(t, dataPath, make([]byte, 100))
	if out, err := exec.Command(vs, "format", dataPath, filepath.Join(dir, "h")).CombinedOutput(); err == nil {
		t.Errorf("veritysetup format(100 bytes) succeeded:\n%s", out)
	}
	_, err := Format(bytes.NewReader(make([]byte, 100)), 100, newMemFile(8192), 0, Params{})
	if err == nil {
		t.Errorf("Format(100 bytes) = nil error, want error")
	}
}

func runTool(t *testing.T, path string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", filepath.Base(path), args, err, out)
	}
	return out
}

func writeFile(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func openFile(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
