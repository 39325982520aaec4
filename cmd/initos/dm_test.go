package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"initos/dm"
	"initos/verity"
)

// TestDMCLIUsage: every bad command line is a usage error (exit 2),
// found before the kernel is asked anything.
func TestDMCLIUsage(t *testing.T) {
	tableFile := filepath.Join(t.TempDir(), "table")
	if err := os.WriteFile(tableFile, []byte("0 8 zero\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := strings.Repeat("ab", 32)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"dm", "create"}, "wrong number of arguments"},
		{[]string{"dm", "create", "x"}, "no table"},
		{[]string{"dm", "create", "x", "--table", "0 8 zero", "--table-file", tableFile}, "not both"},
		{[]string{"dm", "create", "x", "--table", "5 8 zero"}, "starts at sector 5"},
		{[]string{"dm", "create", "x", "--table", "0 8"}, "START LENGTH TYPE"},
		{[]string{"dm", "remove"}, "wrong number of arguments"},
		{[]string{"dm", "ls", "extra"}, "wrong number of arguments"},
		{[]string{"dm", "status"}, "wrong number of arguments"},
		{[]string{"dm", "table", "a", "b"}, "wrong number of arguments"},
		{[]string{"dm", "frob"}, "unknown subcommand"},
		{[]string{"verity", "open", "n", "d", "h"}, "wrong number of arguments"},
		{[]string{"verity", "open", "n", "d", "h", "xyz"}, "not hex"},
		{[]string{"verity", "open", "a/b", "d", "h", root}, "contains '/'"},
		{[]string{"verity", "open", "n", "d", "h", root, "--restart-on-corruption", "--ignore-corruption"}, "exclude each other"},
		{[]string{"verity", "close"}, "wrong number of arguments"},
	}
	for _, tt := range tests {
		_, err := runCLI(t, tt.args...)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("initos %q = %v, want a usage error containing %q", tt.args, err, tt.want)
		}
	}
}

func TestVerityOpenMissingFiles(t *testing.T) {
	dir := t.TempDir()
	_, err := runCLI(t, "verity", "open", "n", filepath.Join(dir, "data"), filepath.Join(dir, "hash"), "abcd")
	if !errors.Is(err, os.ErrNotExist) || errors.Is(err, errUsage) {
		t.Errorf("verity open with missing files = %v, want a not-exist error", err)
	}
}

func TestMaskKey(t *testing.T) {
	tests := []struct{ in, want dm.Spec }{
		{dm.Spec{Length: 8, Kind: "crypt", Args: "aes-xts-plain64 0011aabb 0 7:0 0 1 allow_discards"},
			dm.Spec{Length: 8, Kind: "crypt", Args: "aes-xts-plain64 00000000 0 7:0 0 1 allow_discards"}},
		{dm.Spec{Length: 8, Kind: "crypt", Args: "aes-xts-plain64 :64:logon:cryptsetup:x 0 7:0 0"},
			dm.Spec{Length: 8, Kind: "crypt", Args: "aes-xts-plain64 :64:logon:cryptsetup:x 0 7:0 0"}},
		{dm.Spec{Length: 8, Kind: "linear", Args: "7:0 1234"}, dm.Spec{Length: 8, Kind: "linear", Args: "7:0 1234"}},
		{dm.Spec{Length: 8, Kind: "crypt", Args: ""}, dm.Spec{Length: 8, Kind: "crypt", Args: ""}},
	}
	for _, tt := range tests {
		if got := maskKey(tt.in); got != tt.want {
			t.Errorf("maskKey(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestVerityTargetMatchesVerityPackage: the dm.Verity we build from a tree
// renders exactly the parameters the verity package renders for it.
func TestVerityTargetMatchesVerityPackage(t *testing.T) {
	rootSize := map[string]int{"": 32, "sha1": 20, "sha512": 64}
	for _, p := range []verity.Params{
		{Salt: []byte{1, 2, 3, 4}},
		{NoSalt: true, Hash: "sha1", ChromeOS: true, NoSuperblock: true},
		{Salt: []byte{9}, DataBlockSize: 512, HashBlockSize: 1024, Hash: "sha512"},
	} {
		for _, off := range []int64{0, 1 << 20} {
			r, err := verity.NewResult(p, 1000, off, bytes.Repeat([]byte{0x42}, rootSize[p.Hash]))
			if err != nil {
				t.Fatalf("verity.NewResult(%+v): %v", p, err)
			}
			got, err := verityTarget(r, "/dev/loop0", "/dev/loop1").Params()
			if err != nil {
				t.Fatal(err)
			}
			if want := r.TargetParams("/dev/loop0", "/dev/loop1"); got != want {
				t.Errorf("verityTarget(%+v, offset %d).Params() = %q, want %q", p, off, got, want)
			}
			if s := verityTarget(r, "a", "b").Sectors(); s != r.DataSectors() {
				t.Errorf("Sectors() = %d, want %d", s, r.DataSectors())
			}
		}
	}
}

func TestVerityUUID(t *testing.T) {
	u, _ := verity.ParseUUID("12345678-1234-4234-9234-123456789abc")
	r := &verity.Result{Superblock: true, UUID: u}
	if got, want := verityUUID(r, "usr"), "CRYPT-VERITY-12345678123442349234123456789abc-usr"; got != want {
		t.Errorf("verityUUID = %q, want %q", got, want)
	}
	if got := verityUUID(&verity.Result{}, "usr"); got != "" {
		t.Errorf("verityUUID(no superblock) = %q, want \"\"", got)
	}
}
