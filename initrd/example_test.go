package initrd_test

import (
	"fmt"
	"os"
	"path/filepath"

	"initos/bootconfig"
	"initos/initramfs"
	"initos/initrd"
)

// An initrd for a kernel whose drivers are built in: initos-init and the
// signed config only.
func ExampleBuild() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	init := filepath.Join(dir, "initos-init")
	os.WriteFile(init, []byte("\x7fELF..."), 0o755)
	cfg := bootconfig.New()
	cfg.SecurityVersion = 3
	rd, err := initrd.Build(initrd.Options{Init: init, NoModules: true, Config: cfg})
	if err != nil {
		panic(err)
	}
	out := filepath.Join(dir, "initrd.img")
	if err := rd.Archive.WriteFile(out, initramfs.ZstdBest); err != nil {
		panic(err)
	}
	img, _ := os.ReadFile(out)
	back, err := initrd.ReadConfig(img)
	fmt.Println(back.Mode, back.SecurityVersion, err)
	// Output: boot 3 <nil>
}
