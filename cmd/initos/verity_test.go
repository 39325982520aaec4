package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"initos/internal/testenv"
)

const (
	cliSalt = "00112233"
	cliUUID = "12345678-1234-4234-9234-123456789abc"
)

// cliData writes a data file of n bytes of a repeating pattern.
func cliData(t *testing.T, dir string, n int) string {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/4096)
	}
	p := filepath.Join(dir, "data.img")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// dropFirstLine removes the "VERITY header information for PATH" line.
func dropFirstLine(s string) string {
	_, rest, _ := strings.Cut(s, "\n")
	return rest
}

func TestVerityCLIMatchesVeritysetup(t *testing.T) {
	vs := testenv.Tool(t, "veritysetup")
	for _, extra := range [][]string{
		nil,
		{"--no-superblock", "--hash", "sha1", "--format", "0"},
		{"--hash-offset", "8192", "--data-block-size", "512", "--hash-block-size", "1024"},
	} {
		t.Run(strings.Join(extra, " "), func(t *testing.T) {
			dir := t.TempDir()
			data := cliData(t, dir, 300*4096+5)
			ours, theirs := filepath.Join(dir, "ours.hash"), filepath.Join(dir, "theirs.hash")
			args := append([]string{"--salt", cliSalt, "--uuid", cliUUID}, extra...)
			got, err := runCLI(t, append([]string{"verity", "format", data, ours}, args...)...)
			if err != nil {
				t.Fatalf("initos verity format: %v", err)
			}
			wantOut, err := exec.Command(vs, append([]string{"format", data, theirs}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("veritysetup format: %v\n%s", err, wantOut)
			}
			if dropFirstLine(got) != dropFirstLine(string(wantOut)) {
				t.Errorf("initos verity format printed\n%s\nwant (veritysetup)\n%s", got, wantOut)
			}
			if !strings.HasPrefix(got, "VERITY header information for "+ours+"\n") {
				t.Errorf("initos verity format first line = %q", strings.SplitN(got, "\n", 2)[0])
			}
			a, _ := os.ReadFile(ours)
			b, _ := os.ReadFile(theirs)
			if !bytes.Equal(a, b) {
				t.Errorf("initos verity format wrote %d bytes differing from veritysetup's %d", len(a), len(b))
			}
			if extra == nil {
				dump, err := runCLI(t, "verity", "dump", ours)
				wantDump, _ := exec.Command(vs, "dump", theirs).CombinedOutput()
				if err != nil || dropFirstLine(dump) != dropFirstLine(string(wantDump)) {
					t.Errorf("initos verity dump = %v\n%s\nwant (veritysetup)\n%s", err, dump, wantDump)
				}
			}
		})
	}
}

func TestVerityCLIVerify(t *testing.T) {
	dir := t.TempDir()
	data := cliData(t, dir, 200*4096)
	hash := filepath.Join(dir, "data.hash")
	out, err := runCLI(t, "verity", "format", "--json", data, hash)
	if err != nil {
		t.Fatal(err)
	}
	var j treeJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil || len(j.RootHash) != 64 || j.DataBlocks != 200 {
		t.Fatalf("initos verity format --json = %q, %v", out, err)
	}
	if _, err := runCLI(t, "verity", "verify", data, hash, j.RootHash); err != nil {
		t.Errorf("initos verity verify(intact) = %v, want nil", err)
	}
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	b[77*4096+9] ^= 1
	if err := os.WriteFile(data, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = runCLI(t, "verity", "verify", data, hash, j.RootHash)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), "data block 77 ") {
		t.Errorf("initos verity verify(corrupt) = %v, want exit 1 naming data block 77", err)
	}
}

func TestVerityCLISameFile(t *testing.T) {
	dir := t.TempDir()
	img := cliData(t, dir, 64*4096)
	out, err := runCLI(t, "verity", "format", img, img, "--hash-offset", "262144", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var j treeJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil || j.DataBlocks != 64 {
		t.Errorf("format same file --json = %q (%v), want 64 data blocks", out, err)
	}
	if _, err := runCLI(t, "verity", "verify", img, img, j.RootHash, "--hash-offset", "262144"); err != nil {
		t.Errorf("verify same file = %v", err)
	}
	if _, err := runCLI(t, "verity", "format", img, img); !errors.Is(err, errUsage) {
		t.Errorf("format same file without --hash-offset = %v, want usage error", err)
	}
}

// A data file that ends before --hash-offset hashes only its own blocks,
// and the file is byte-identical to what veritysetup makes of a copy.
func TestVerityCLISameFileShorterThanOffset(t *testing.T) {
	vs := testenv.Tool(t, "veritysetup")
	dir := t.TempDir()
	ours := cliData(t, dir, 244*4096+576)
	b, err := os.ReadFile(ours)
	if err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(dir, "theirs.img")
	if err := os.WriteFile(theirs, b, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--salt", cliSalt, "--uuid", cliUUID, "--hash-offset", "1048576"}
	out, err := runCLI(t, append([]string{"verity", "format", "--json", ours, ours}, args...)...)
	if err != nil {
		t.Fatalf("initos verity format same file, offset past EOF: %v", err)
	}
	if wantOut, err := exec.Command(vs, append([]string{"format", theirs, theirs}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("veritysetup format: %v\n%s", err, wantOut)
	}
	var j treeJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil || j.DataBlocks != 244 {
		t.Errorf("format same file --json = %q (%v), want 244 data blocks", out, err)
	}
	a, _ := os.ReadFile(ours)
	b, _ = os.ReadFile(theirs)
	if !bytes.Equal(a, b) {
		t.Errorf("initos verity format wrote %d bytes differing from veritysetup's %d", len(a), len(b))
	}
	if out, err := exec.Command(vs, "verify", "--hash-offset", "1048576", ours, ours, j.RootHash).CombinedOutput(); err != nil {
		t.Errorf("veritysetup verify of our same-file tree: %v\n%s", err, out)
	}
}

func TestVerityCLIInPlace(t *testing.T) {
	dir := t.TempDir()
	data := cliData(t, dir, 10*4096)
	hash := filepath.Join(dir, "dev.hash")
	old := bytes.Repeat([]byte{0xee}, 64*1024)
	if err := os.WriteFile(hash, old, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "verity", "format", data, hash, "--hash-offset", "8192"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(hash)
	if len(got) != len(old) || !bytes.Equal(got[:8192], old[:8192]) || !bytes.Equal(got[16384:], old[16384:]) {
		t.Errorf("format into existing file touched bytes outside the hash area")
	}
	if st, _ := os.Stat(hash); st.Mode().Perm() != 0o600 {
		t.Errorf("format in place changed the mode to %v", st.Mode())
	}
}
