package dm_test

import (
	"fmt"
	"log"

	"initos/dm"
)

// Open a LUKS2 volume's payload with its key in the kernel keyring, then
// remove it again.
func ExampleCreateDevice() {
	node, err := dm.CreateDevice("root", "CRYPT-LUKS2-0123-root", false, dm.Crypt{
		Length:          20971520, // 10 GiB
		KeyringKey:      &dm.KeyringKey{Size: 64, Description: "initos:root"},
		Device:          "/dev/vda3",
		Offset:          32768, // after the 16 MiB LUKS2 header
		NoReadWorkqueue: true, NoWriteWorkqueue: true,
	})
	if err != nil {
		log.Fatal(err) // e.g. "dm load table root: ioctl(DM_TABLE_LOAD): invalid argument (kernel: ...)"
	}
	fmt.Println("mount", node)
	if err := dm.RemoveDevice("root"); err != nil {
		log.Fatal(err)
	}
}
