package luks2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seedHeaders returns the header seeds from testdata.
func seedHeaders(f *testing.F) [][]byte {
	f.Helper()
	paths, _ := filepath.Glob(filepath.Join("testdata", "*.hdr"))
	if len(paths) == 0 {
		f.Fatal("no testdata/*.hdr seeds")
	}
	var seeds [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzReadHeader parses arbitrary bytes as a LUKS2 header pair and, when
// that succeeds, re-serializes and re-reads it.
func FuzzReadHeader(f *testing.F) {
	for _, s := range seedHeaders(f) {
		f.Add(s)
		f.Add(s[:DefaultMetadataSize])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkReparse(t, b)
		checkReparse(t, fixChecksums(b)) // let mutations reach the JSON checks
	})
}

// fixChecksums returns b with valid checksums on both header copies, so
// that mutations get past the checksum check.
func fixChecksums(b []byte) []byte {
	b = bytes.Clone(b)
	if len(b) < BinaryHeaderSize {
		return b
	}
	size := binary.BigEndian.Uint64(b[8:16])
	for _, off := range []uint64{0, size} {
		if !ValidMetadataSize(size) || uint64(len(b)) < off+size {
			break
		}
		area := b[off : off+size]
		sum, _ := checksum("sha256", area)
		copy(area[checksumOffset:checksumOffset+64], make([]byte, 64))
		copy(area[checksumOffset:], sum)
	}
	return b
}

// checkReparse reads b and, when that succeeds, writes the header to a
// new device and reads it back.
func checkReparse(t *testing.T, b []byte) {
	t.Helper()
	h, err := ReadHeader(bytes.NewReader(b))
	if err != nil {
		return
	}
	dev := &memDevice{b: make([]byte, 2*h.MetadataSize())}
	if err := h.Write(dev); err != nil {
		if strings.Contains(err.Error(), "do not fit") || errors.Is(err, ErrUnsupported) {
			return // our encoding of a nearly full JSON area may be longer; unsupported features are not rewritten
		}
		t.Fatalf("Write(parsed header) = %v", err)
	}
	h2, err := ReadHeader(dev)
	if err != nil || h2.Damaged() {
		t.Fatalf("ReadHeader(rewritten) = %v", err)
	}
}

// FuzzMetadata parses arbitrary JSON as LUKS2 metadata for a 16 KiB
// header, validates it, and round-trips what validates.
func FuzzMetadata(f *testing.F) {
	for _, s := range seedHeaders(f) {
		f.Add(bytes.TrimRight(s[BinaryHeaderSize:DefaultMetadataSize], "\x00"))
	}
	f.Add([]byte(`{"keyslots":{},"tokens":{},"segments":{},"digests":{},"config":{"json_size":"12288","keyslots_size":"99999999999999999999"}}`))
	f.Fuzz(func(t *testing.T, js []byte) {
		area := make([]byte, DefaultMetadataSize-BinaryHeaderSize)
		if len(js) >= len(area) {
			return
		}
		copy(area, js)
		m, err := decodeMetadata(area)
		if err != nil || m.validate(DefaultMetadataSize) != nil {
			return
		}
		out, err := encodeMetadata(m, len(area))
		if err != nil {
			return // re-encoding may grow (e.g. escapes); not an error
		}
		m2, err := decodeMetadata(out)
		if err != nil || m2.validate(DefaultMetadataSize) != nil {
			t.Fatalf("round trip of valid metadata fails: %v", err)
		}
	})
}

// memDevice is an in-memory Device.
type memDevice struct{ b []byte }

func (d *memDevice) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(d.b).ReadAt(p, off)
}

func (d *memDevice) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(d.b) {
		d.b = append(d.b, make([]byte, end-len(d.b))...)
	}
	return copy(d.b[off:], p), nil
}

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/ours.hdr, the fuzz seed written by this package")

// TestSeedHeader checks that the committed fuzz seed testdata/ours.hdr is
// still a header this package reads, with its token; `go test ./luks2 -run
// TestSeedHeader -update-seeds` rewrites it.
func TestSeedHeader(t *testing.T) {
	const path = "testdata/ours.hdr"
	if *updateSeeds {
		dev := &memDevice{}
		h, err := Format(dev, []byte("seed"), FormatOptions{PBKDF: fastPBKDF["argon2id"], Label: "seed", DataOffset: 1 << 20, KeyslotsSize: 512 << 10})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.AddToken(dev, -1, []byte(`{"type":"systemd-recovery","keyslots":["0"]}`)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, dev.b[:2*h.MetadataSize()], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h, err := ReadHeaderFile(path)
	if err != nil {
		t.Fatalf("ReadHeaderFile(%s) = %v", path, err)
	}
	if ids, _ := h.Tokens(); len(ids) != 1 {
		t.Errorf("ReadHeaderFile(%s): tokens %v, want one", path, ids)
	}
}
