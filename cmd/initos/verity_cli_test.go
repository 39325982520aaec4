package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// formatJSON formats data into hash with args and returns the tree.
func formatJSON(t *testing.T, data, hash string, args ...string) treeJSON {
	t.Helper()
	out := mustRun(t, append([]string{"verity", "format", "--json", data, hash}, args...)...)
	var j treeJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("verity format --json = %q: %v", out, err)
	}
	return j
}

func TestVerityCLIVerifyJSON(t *testing.T) {
	dir := t.TempDir()
	data := cliData(t, dir, 200*4096)
	hash := filepath.Join(dir, "data.hash")
	tree := formatJSON(t, data, hash)

	out, _, code := runStatus(t, "verity", "verify", "--json", data, hash, tree.RootHash)
	var ok verifyJSON
	if err := json.Unmarshal([]byte(out), &ok); err != nil || code != 0 || !ok.OK || ok.RootHash != tree.RootHash || ok.DataBlocks != 200 {
		t.Errorf("verity verify --json (intact) = %d, %v:\n%s", code, err, out)
	}

	b, _ := os.ReadFile(data)
	b[77*4096+9] ^= 1
	corrupt := filepath.Join(dir, "corrupt.img")
	if err := os.WriteFile(corrupt, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runStatus(t, "verity", "verify", "--json", corrupt, hash, tree.RootHash)
	var bad verifyJSON
	if err := json.Unmarshal([]byte(out), &bad); err != nil || code != 1 || bad.OK || bad.Corrupt == nil {
		t.Fatalf("verity verify --json (corrupt) = %d, %v:\n%s", code, err, out)
	}
	if c := *bad.Corrupt; c.Device != "data" || c.Level != -1 || c.Block != 77 || c.Offset != 77*4096 {
		t.Errorf("corrupt = %+v, want data block 77 at offset %d", c, 77*4096)
	}
	if !strings.Contains(errOut, "data block 77 (offset 315392) is corrupt") {
		t.Errorf("stderr = %q, want the corrupt block named", errOut)
	}

	short := filepath.Join(dir, "short.img")
	if err := os.WriteFile(short, b[:100*4096], 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runStatus(t, "verity", "verify", "--json", short, hash, tree.RootHash)
	want := "data device is 409600 bytes, superblock needs 819200 (200 blocks of 4096 bytes)"
	if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(out, `"ok": false`) || !strings.Contains(out, want) {
		t.Errorf("verity verify --json (short data) = %d\nstdout:\n%s\nstderr:\n%s\nwant exit 1 and %q", code, out, errOut, want)
	}
}

func TestVerityCLIErrorMessages(t *testing.T) {
	dir := t.TempDir()
	data := cliData(t, dir, 64*4096)
	hash := filepath.Join(dir, "data.hash")
	tree := formatJSON(t, data, hash, "--salt", cliSalt)
	root := tree.RootHash
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("tiny"), 0o644); err != nil {
		t.Fatal(err)
	}
	h2 := filepath.Join(dir, "h2")
	for _, c := range []cliCase{
		{args: []string{"verity", "format", "--help"}, code: 0, stdout: "usage: initos verity format [FLAGS] DATA HASH"},
		{args: []string{"verity", "verify", "-h"}, code: 0, stdout: "  --json"},
		{args: []string{"verity", "dump", "--help"}, code: 0, stdout: "Prints the superblock of the verity tree"},
		{args: []string{"verity", "open", "--help"}, code: 0, stdout: "  --no-superblock"},
		{args: []string{"verity", "close", "--help"}, code: 0, stdout: "usage: initos verity close NAME"},
		{args: []string{"verity", "format"}, code: 2, stderr: "wrong number of arguments (0, want 2)"},
		{args: []string{"verity", "format", "--bogus", data, h2}, code: 2, stderr: "flag provided but not defined: -bogus"},
		{args: []string{"verity", "format", "--format", "2", data, h2}, code: 2, stderr: "--format 2: want 0 or 1"},
		{args: []string{"verity", "format", "--salt", "xyz", data, h2}, code: 2, stderr: "--salt: encoding/hex: invalid byte"},
		{args: []string{"verity", "format", "--uuid", "nope", data, h2}, code: 2, stderr: "--uuid:"},
		{args: []string{"verity", "format", "--data-block-size", "4294971392", data, h2}, code: 2, stderr: "--data-block-size 4294971392: above 65536"},
		{args: []string{"verity", "format", data, data}, code: 2, stderr: "DATA and HASH are the same file: give --hash-offset"},
		{args: []string{"verity", "format", small, h2}, code: 1, stderr: "check data: no whole 4096-byte data block"},
		{args: []string{"verity", "format", "--hash", "md5", data, h2}, code: 1, stderr: "md5"},
		{args: []string{"verity", "format", filepath.Join(dir, "missing"), h2}, code: 1, stderr: "no such file or directory"},
		{args: []string{"verity", "verify", data, hash, "zz"}, code: 2, stderr: `ROOTHASH "zz" is not hex`},
		{args: []string{"verity", "verify", data, hash, root, "--uuid", cliUUID}, code: 2, stderr: "flag provided but not defined: -uuid"},
		{args: []string{"verity", "verify", data, hash, root, "--hash", "sha1"}, code: 1,
			stderr: "the superblock at offset 0 does not match --hash sha1 (superblock: sha256)"},
		{args: []string{"verity", "verify", data, hash, root, "--salt", "00", "--data-blocks", "3"}, code: 1,
			stderr: "does not match --data-blocks 3 (superblock: 64), --salt 00 (superblock: " + cliSalt + ")"},
		{args: []string{"verity", "verify", data, hash, root, "--hash", "sha256", "--salt", cliSalt, "--data-blocks", "64"}, code: 0},
		{args: []string{"verity", "verify", data, hash, strings.Repeat("00", 32)}, code: 1, stderr: "digest does not match the root hash"},
		{args: []string{"verity", "verify", data, data, root}, code: 1, stderr: "tree in " + data + ": read verity superblock at offset 0: check superblock: bad magic"},
		{args: []string{"verity", "dump", data}, code: 1, stderr: "verity dump " + data + ": read verity superblock at offset 0"},
		{args: []string{"verity", "open", "n", data, hash, "zz"}, code: 2, stderr: `ROOTHASH "zz" is not hex`},
		{args: []string{"verity", "open", "--no-superblock", "--hash-block-size", "4294971392", "n", data, hash, "00"}, code: 2, stderr: "--hash-block-size 4294971392: above 65536"},
	} {
		c.check(t)
	}
	if _, err := os.Stat(h2); !os.IsNotExist(err) {
		t.Errorf("failed formats left %s behind: %v", h2, err)
	}
	assertNoTemp(t, dir)
}

// assertNoTemp fails when dir holds a leftover atomicfile temporary.
func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("leftover temporary file %s", e.Name())
		}
	}
}

// TestVerityCLICancelled: a format stopped by SIGINT (its context
// cancelled with the signal as cause) exits 130, leaves no new file, and
// puts an in-place hash area back as it was.
func TestVerityCLICancelled(t *testing.T) {
	dir := t.TempDir()
	data := cliData(t, dir, 64*4096)
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(signalCause{syscall.SIGINT})
	status := func(args ...string) (string, int) {
		var stdout, stderr bytes.Buffer
		code := exitCode(withCause(ctx, run(ctx, args, &stdout, &stderr)), &stderr)
		return stderr.String(), code
	}
	newHash := filepath.Join(dir, "new.hash")
	if msg, code := status("verity", "format", data, newHash); code != 130 || !strings.Contains(msg, "stopped: interrupt") {
		t.Errorf("verity format (SIGINT) = %d %q, want 130 and the signal named", code, msg)
	}
	if _, err := os.Stat(newHash); !os.IsNotExist(err) {
		t.Errorf("an interrupted format left %s: %v", newHash, err)
	}
	assertNoTemp(t, dir)

	// In place: an old tree at the offset and bytes past it.
	old := filepath.Join(dir, "old.hash")
	formatJSON(t, data, old, "--hash-offset", "8192")
	b, _ := os.ReadFile(old)
	b = append(b, bytes.Repeat([]byte{0xee}, 5000)...)
	if err := os.WriteFile(old, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancelCause(context.Background())
	cancel(signalCause{syscall.SIGTERM})
	if _, code := status("verity", "format", "--salt", cliSalt, data, old, "--hash-offset", "8192"); code != 143 {
		t.Errorf("verity format in place (SIGTERM) = %d, want 143", code)
	}
	if got, _ := os.ReadFile(old); !bytes.Equal(got, b) {
		t.Errorf("an interrupted in-place format changed the hash file (%d bytes, was %d)", len(got), len(b))
	}
}

// TestVerityHelperProcess is not a test: it runs initos in a child
// process for TestVerityCLISignal.
func TestVerityHelperProcess(t *testing.T) {
	if os.Getenv("INITOS_TEST_HELPER") != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(runMain(args, os.Stdout, os.Stderr))
}

// TestVerityCLISignal sends a real SIGINT to `initos verity format` of 128
// MiB while it hashes, into a new file and in place after the data in the
// same file: exit status 130, no file left, the data file as it was.
func TestVerityCLISignal(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes 128 MiB")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data.img")
	big := bytes.Repeat([]byte("InitOS verity"), 128<<20/13)
	if err := os.WriteFile(data, big, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(big)
	started := func() bool { // the temporary file or the appended tree exists
		entries, _ := os.ReadDir(dir)
		st, _ := os.Stat(data)
		return len(entries) > 1 || st.Size() > int64(len(big))
	}
	for _, args := range [][]string{
		{"verity", "format", data, filepath.Join(dir, "data.hash")},
		{"verity", "format", data, data, "--hash-offset", "134217728"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestVerityHelperProcess$", "--")
		cmd.Args = append(cmd.Args, args...)
		cmd.Env = append(os.Environ(), "INITOS_TEST_HELPER=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for !started() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != 130 {
			t.Errorf("initos %q with SIGINT: exit %d (%v), want 130\nstderr: %s", args, code, err, stderr.String())
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("initos %q with SIGINT left %d files, want only the data", args, len(entries))
		}
		if got, _ := os.ReadFile(data); sha256.Sum256(got) != sum {
			t.Errorf("initos %q with SIGINT changed the data file (%d bytes, was %d)", args, len(got), len(big))
		}
	}
}
