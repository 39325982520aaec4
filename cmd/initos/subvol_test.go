package main

import (
	"errors"
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

	if err := mustFail(t, "subvol", "delete", a); err == nil || !strings.Contains(err.Error(), "use -R") {
		t.Errorf("subvol delete of a subvolume with a nested one = %v, want a hint to use -R", err)
	}
	mustRun(t, "subvol", "delete", "-R", a)
	mustRun(t, "subvol", "delete", s, r)
	if subs, err := btrfsioctl.List(mnt); err != nil || len(subs) != 0 {
		t.Errorf("after delete: List = %v, %v, want none", subs, err)
	}
	if err := mustFail(t, "subvol", "ro", "maybe", a); !errors.Is(err, errUsage) {
		t.Errorf("subvol ro maybe = %v, want a usage error", err)
	}
}
