package image

import (
	"io"
	"os"
)

type ioReadCloser = io.ReadCloser

func openFile(p string) (io.ReadCloser, error) { return os.Open(p) }
