package hostconf_test

import (
	"fmt"

	"initos/image/hostconf"
)

func Example() {
	c, err := hostconf.Parse([]byte("root.a=roots/new\nroot.b=roots/old\nrootflags=noatime\n"))
	if err != nil {
		panic(err)
	}
	a, _ := c.RootFor(hostconf.SlotA)
	b, _ := c.RootFor(hostconf.SlotB)
	fmt.Println(a, b, c.RootFlags)
	// Output: roots/new roots/old noatime
}
