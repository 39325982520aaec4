package initramfs_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"time"

	"initos/initramfs"
)

func Example() {
	a := &initramfs.Archive{ModTime: time.Unix(1700000000, 0)}
	a.AddFile("init", 0o755, []byte("#!/bin/sh\n"))
	a.AddCharDevice("dev/console", 0o600, 5, 1)
	a.AddSymlink("bin/sh", "busybox")
	var img bytes.Buffer
	if err := a.WriteTo(&img, initramfs.Zstd); err != nil {
		log.Fatal(err)
	}

	r := initramfs.NewReader(&img)
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(h.Ino, h.FileMode(), h.Name)
	}
	fmt.Println(r.Segments())
	// Output:
	// 1 drwxr-xr-x bin
	// 2 Lrwxrwxrwx bin/sh
	// 3 drwxr-xr-x dev
	// 4 Dcrw------- dev/console
	// 5 -rwxr-xr-x init
	// [zstd]
}
