package dm_test

import (
	"fmt"

	"initos/dm"
)

// A verity table line as the kernel receives it.
func ExampleVerity() {
	v := dm.Verity{
		DataDevice: "/dev/vda2",
		HashDevice: "/dev/vda3",
		DataBlocks: 25600,
		RootDigest: []byte{0xde, 0xad, 0xbe, 0xef},
		Salt:       []byte{0x01},
		// Reboot rather than serve a tampered block.
		OnCorruption: dm.CorruptionRestart,
	}
	params, err := v.Params()
	if err != nil {
		panic(err)
	}
	fmt.Println(dm.Spec{Start: 0, Length: v.Sectors(), Kind: v.Type(), Args: params})
	// Output: 0 204800 verity 1 /dev/vda2 /dev/vda3 4096 4096 25600 0 sha256 deadbeef 01 1 restart_on_corruption
}
