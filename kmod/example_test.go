package kmod_test

import (
	"fmt"
	"log"

	"initos/kmod"
)

func ExampleIndex_Resolve() {
	ix, err := kmod.Open("testdata/synthetic")
	if err != nil {
		log.Fatal(err)
	}
	mods, err := ix.Resolve("fs-top", "sha-thing")
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range mods {
		if m.Builtin {
			fmt.Println(m.Name, "(built in)")
			continue
		}
		fmt.Println(m.Name, m.Path)
	}
	_, err = ix.Resolve("no-such-module")
	fmt.Println(err)
	// Output:
	// base kernel/c/base.ko.zst
	// mid_mod kernel/b/mid_mod.ko.xz
	// top_mod kernel/a/top-mod.ko
	// sha_thing (built in)
	// module no-such-module not found in testdata/synthetic (modules.dep, modules.alias, modules.builtin)
}
