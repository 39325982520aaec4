package install_test

import (
	"bytes"
	"fmt"

	"initos/install"
)

// A disk is probed before anything is written: blank, an InitOS install
// (partial or complete), or foreign.
func ExampleProbe() {
	disk := make([]byte, 4<<20)
	c, _ := install.Probe(bytes.NewReader(disk), int64(len(disk)), 512)
	fmt.Println(c.Kind)
	copy(disk[65536+64:], "_BHRfS_M")
	c, _ = install.Probe(bytes.NewReader(disk), int64(len(disk)), 512)
	fmt.Println(c.Kind, "-", c.What)
	// Output:
	// blank
	// foreign - btrfs filesystem
}

// An unattended install is described by install.json.
func ExampleParseConfig() {
	c, err := install.ParseConfig([]byte(`{"disks":["auto"],"yes":true,"esp_size":"256MiB",
		"artifacts":"out","image":"oci:debianhost","recovery_key":{"file":"recovery-key.txt"}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Disks, c.ESPSize, c.Image, c.RecoveryKey.File)
	_, err = install.ParseConfig([]byte(`{"disk":"vda"}`))
	fmt.Println(err)
	// Output:
	// [auto] 256 MiB oci:debianhost recovery-key.txt
	// invalid install config: json: unknown field "disk"
}
