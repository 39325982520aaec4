package btrfsioctl_test

import (
	"fmt"
	"log"

	"initos/btrfsioctl"
)

func Example() {
	// Make a read-only snapshot of a root and list the filesystem.
	if err := btrfsioctl.Snapshot("/x/roots/host", "/x/roots/host@before-upgrade", true); err != nil {
		log.Fatal(err)
	}
	subs, err := btrfsioctl.List("/x")
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range subs {
		fmt.Println(s.ID, s.Path, s.ReadOnly)
	}
}
