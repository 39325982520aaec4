package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"initos/btrfsioctl"
	"initos/btrfsioctl/btrfstest"
	"initos/internal/testenv"
)

func TestSubvolCLI(t *testing.T) {
	mnt := btrfstest.Mount(t, 256)
	a, s, r := filepath.Join(mnt, "a"), filepath.Join(mnt, "s"), filepath.Join(mnt, "r")
	mustRun(t, "subvol", "create", a)
	mustRun(t, "subvol", "create", filepath.Join(a, "nested"))
	mustRun(t, "subvol", "snapshot", a, s)
	mustRun(t, "subvol", "snapshot", "-r", a, r)

	list := mustRun(t, "subvol", "list", mnt)
	oracle := string(testenv.Run(t, "btrfs", "subvolume", "list", mnt))
	for _, p := range []string{"a", "a/nested", "s", "r"} {
		if !strings.Contains(list, "path "+p+"\n") || !strings.Contains(oracle, "path "+p+"\n") {
			t.Errorf("subvol list = %q, btrfs = %q, want path %s in both", list, oracle, p)
		}
	}
	if got := mustRun(t, "subvol", "ro", r); got != "ro=true\n" {
		t.Errorf("subvol ro r = %q, want ro=true", got)
	}
	mustRun(t, "subvol", "ro", "false", r)
	if got := string(testenv.Run(t, "btrfs", "property", "get", "-ts", r, "ro")); got != "ro=false\n" {
		t.Errorf("after subvol ro false: btrfs property = %q, want ro=false", got)
	}
	show := mustRun(t, "subvol", "show", s)
	if !strings.Contains(show, "Path:\t\ts\n") {
		t.Errorf("subvol show = %q, want Path s", show)
	}
	mustRun(t, "subvol", "set-default", s)
	if got := mustRun(t, "subvol", "get-default", mnt); !strings.HasSuffix(got, " path s\n") {
		t.Errorf("get-default = %q, want path s", got)
	}
	if out := string(testenv.Run(t, "btrfs", "subvolume", "get-default", mnt)); !strings.HasSuffix(out, "path s\n") {
		t.Errorf("btrfs get-default = %q, want path s", out)
	}
	mustRun(t, "subvol", "set-default", mnt)

	testSubvolJSON(t, mnt, s)
	wantCLIError(t, 1, "nested subvolumes inside: use -R", "subvol", "delete", a)
	mustRun(t, "subvol", "delete", "-R", a)
	mustRun(t, "subvol", "delete", s, r)
	if subs, err := btrfsioctl.List(mnt); err != nil || len(subs) != 0 {
		t.Errorf("after delete: List = %v, %v, want none", subs, err)
	}
	for _, tt := range []struct {
		code int
		want string
		args []string
	}{
		{2, `want true or false, got "maybe"`, []string{"subvol", "ro", "maybe", a}},
		{1, "no such file or directory", []string{"subvol", "show", filepath.Join(mnt, "nope")}},
		{1, "no such file or directory", []string{"subvol", "list", "--json", filepath.Join(mnt, "nope")}},
		{2, "wrong number of arguments (1, want 2)", []string{"subvol", "snapshot", a}},
		{1, "not on btrfs", []string{"subvol", "create", mnt}},
	} {
		wantCLIError(t, tt.code, tt.want, tt.args...)
	}
}

// testSubvolJSON checks the --json outputs against btrfs-progs.
func testSubvolJSON(t *testing.T, mnt, snap string) {
	t.Helper()
	var list []subvolJSON
	if err := json.Unmarshal([]byte(mustRun(t, "subvol", "list", "--json", mnt)), &list); err != nil {
		t.Fatalf("subvol list --json: %v", err)
	}
	oracle := string(testenv.Run(t, "btrfs", "subvolume", "list", "-u", mnt))
	for _, sv := range list {
		if line := fmt.Sprintf("ID %d gen %d top level %d uuid %s path %s\n", sv.ID, sv.Generation, sv.ParentID, sv.UUID, sv.Path); !strings.Contains(oracle, line) {
			t.Errorf("subvol list --json entry %+v: btrfs subvolume list has no line %q:\n%s", sv, line, oracle)
		}
	}
	if len(list) != strings.Count(oracle, "\n") {
		t.Errorf("subvol list --json = %d subvolumes, btrfs lists %d", len(list), strings.Count(oracle, "\n"))
	}
	var one subvolJSON
	if err := json.Unmarshal([]byte(mustRun(t, "subvol", "show", "--json", snap)), &one); err != nil || one.Path != "s" {
		t.Fatalf("subvol show --json = %+v, %v, want path s", one, err)
	}
	show := string(testenv.Run(t, "btrfs", "subvolume", "show", snap))
	for _, want := range []string{"UUID: \t\t\t" + one.UUID, "Parent UUID: \t\t" + one.ParentUUID, fmt.Sprintf("Subvolume ID: \t\t%d", one.ID)} {
		if !strings.Contains(strings.ReplaceAll(show, " ", ""), strings.ReplaceAll(want, " ", "")) {
			t.Errorf("btrfs subvolume show %s:\n%s\nwant %q (from subvol show --json)", snap, show, want)
		}
	}
	var def struct {
		ID   uint64 `json:"id"`
		Path string `json:"path"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "subvol", "get-default", "--json", mnt)), &def); err != nil || def.ID != 5 || def.Path != "" {
		t.Errorf("subvol get-default --json = %+v, %v, want id 5 and an empty path (the top level)", def, err)
	}
}

func TestSubvolHelp(t *testing.T) {
	for _, verb := range []string{"create", "snapshot", "delete", "list", "show", "set-default", "get-default", "ro"} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"subvol", verb, "--help"}, &stdout, &stderr)
		if exitCode(err, io.Discard) != 0 || !strings.HasPrefix(stdout.String(), "usage: initos subvol "+verb+" ") || stderr.Len() != 0 {
			t.Errorf("initos subvol %s --help = %v, stdout %q, stderr %q", verb, err, stdout.String(), stderr.String())
		}
		if d := verbDocs["subvol "+verb]; d.about == "" {
			t.Errorf("subvol %s has no description", verb)
		}
	}
}
