package kmod

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

func TestCompression(t *testing.T) {
	for in, want := range map[string]string{
		"a.ko": "", "a.ko.xz": "xz", "k/a.ko.zst": "zst", "a.ko.gz": "gz", "a.xz": "",
	} {
		if got := compression(in); got != want {
			t.Errorf("compression(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecompress(t *testing.T) {
	elf := append([]byte("\x7fELF"), bytes.Repeat([]byte("module body "), 1000)...)
	var xzb, zstb, gzb bytes.Buffer
	xw, err := xz.NewWriter(&xzb)
	if err != nil {
		t.Fatal(err)
	}
	xw.Write(elf)
	xw.Close()
	zw, _ := zstd.NewWriter(&zstb)
	zw.Write(elf)
	zw.Close()
	gw := gzip.NewWriter(&gzb)
	gw.Write(elf)
	gw.Close()
	for kind, data := range map[string][]byte{"xz": xzb.Bytes(), "zst": zstb.Bytes(), "gz": gzb.Bytes()} {
		got, err := decompress(kind, bytes.NewReader(data))
		if err != nil || !bytes.Equal(got, elf) {
			t.Errorf("decompress(%s) = %d bytes, %v; want %d bytes", kind, len(got), err, len(elf))
		}
		_, err = decompress(kind, bytes.NewReader(data[:len(data)/2]))
		if err == nil || !strings.HasPrefix(err.Error(), kind) {
			t.Errorf("decompress(%s, truncated) error = %v, want one starting %q", kind, err, kind)
		}
	}
	if _, err := decompress("lz4", nil); err == nil {
		t.Errorf("decompress(lz4) error = nil, want unknown compression")
	}
}
