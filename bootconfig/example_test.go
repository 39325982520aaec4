package bootconfig_test

import (
	"fmt"

	"initos/bootconfig"
)

func Example() {
	c := bootconfig.New()
	c.SecurityVersion = 7
	c.ModulesImage = bootconfig.ModulesImage{
		File:       "initos/modules-6.1.0-57-amd64.sqfs",
		RootHash:   "64e1014c7722f2e6944131dedb42c218a2c2ed219fafdefd55b88be17c52f55f",
		DataSize:   12582912,
		HashOffset: 12582912,
	}
	b, err := c.Marshal()
	if err != nil {
		panic(err)
	}
	back, err := bootconfig.Parse(b)
	fmt.Println(back.Mode, back.SecurityVersion, back.ModulesImage.File, back.FailureTimeout(), err)

	_, err = bootconfig.Parse([]byte(`{"version":1,"mode":"boot","unlock":{"measure_pcr":11}}`))
	fmt.Println(err)
	// Output:
	// boot 7 initos/modules-6.1.0-57-amd64.sqfs 5m0s <nil>
	// invalid initrd config: unlock.measure_pcr: 11: want one of 8-10, 12-16, 23 (PCR 11 holds the boot phases)
}
