package cpio_test

import (
	"bytes"
	"fmt"
	"io"
	"log"

	"initos/cpio"
)

func Example() {
	var buf bytes.Buffer
	w := cpio.NewWriter(&buf)
	data := []byte("#!/bin/sh\n")
	for _, h := range []*cpio.Header{
		{Name: "bin", Mode: cpio.TypeDir | 0o755, NLink: 2},
		{Name: "bin/sh", Mode: cpio.TypeSymlink | 0o777, NLink: 1, Linkname: "busybox"},
		{Name: "init", Mode: cpio.TypeReg | 0o755, NLink: 1, Size: uint32(len(data))},
	} {
		if err := w.WriteHeader(h); err != nil {
			log.Fatal(err)
		}
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	r := cpio.NewReader(&buf)
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%v %d %s", h.FileMode(), h.Size, h.Name)
		if h.Linkname != "" {
			fmt.Print(" -> ", h.Linkname)
		}
		fmt.Println()
	}
	// Output:
	// drwxr-xr-x 0 bin
	// Lrwxrwxrwx 7 bin/sh -> busybox
	// -rwxr-xr-x 10 init
}
