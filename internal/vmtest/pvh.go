package vmtest

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// A direct kernel boot of the bzImage spends ~2.5 s of TCG time in the
// decompressor before the kernel starts. Booting the decompressed ELF
// vmlinux through its PVH entry point (qemu loads it when the ELF carries
// the XEN_ELFNOTE_PHYS32_ENTRY note; Debian's kernel has CONFIG_PVH=y)
// skips that. The vmlinux is cached in the user cache directory, keyed by
// the bzImage's SHA-256. Any failure falls back to the bzImage.

// Linux boot protocol (Documentation/arch/x86/boot.rst), setup header
// fields at fixed offsets of the bzImage.
const (
	offSetupSects    = 0x1f1 // setup_sects: 512-byte sectors after the boot sector (0 means 4)
	offHeaderMagic   = 0x202 // "HdrS"
	offPayloadOffset = 0x248 // payload_offset, from the protected-mode code (protocol 2.08+)
	offPayloadLength = 0x24c // payload_length
)

// xenElfNotePhys32Entry is the ELF note (owner "Xen") giving the PVH entry.
const xenElfNotePhys32Entry = 18

var pvhImages sync.Map // bzImage path -> func() (string, error)

// pvhKernel returns a vmlinux with a PVH entry point for the bzImage at
// path, extracting it on first use.
func pvhKernel(path string) (string, error) {
	f, _ := pvhImages.LoadOrStore(path, sync.OnceValues(func() (string, error) { return extractPVH(path) }))
	return f.(func() (string, error))()
}

func extractPVH(path string) (string, error) {
	bz, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("extract vmlinux: %w", err)
	}
	sum := sha256.Sum256(bz)
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("extract vmlinux: %w", err)
	}
	dst := filepath.Join(cache, "initos-vmtest", "vmlinux-"+hex.EncodeToString(sum[:12]))
	if hasPVHNote(dst) == nil {
		return dst, nil
	}
	payload, err := bzPayload(bz)
	if err != nil {
		return "", fmt.Errorf("extract vmlinux from %s: %w", path, err)
	}
	elfImage, err := decompressPayload(payload)
	if err != nil {
		return "", fmt.Errorf("extract vmlinux from %s: %w", path, err)
	}
	if err := writeAtomic(dst, elfImage); err != nil {
		return "", fmt.Errorf("extract vmlinux: %w", err)
	}
	if err := hasPVHNote(dst); err != nil {
		return "", fmt.Errorf("extract vmlinux from %s: %w", path, err)
	}
	return dst, nil
}

// bzPayload returns the compressed kernel inside a bzImage.
func bzPayload(bz []byte) ([]byte, error) {
	if len(bz) < offPayloadLength+4 || string(bz[offHeaderMagic:offHeaderMagic+4]) != "HdrS" {
		return nil, errors.New("not a bzImage: no HdrS setup header")
	}
	sects := int(bz[offSetupSects])
	if sects == 0 {
		sects = 4
	}
	start := (sects+1)*512 + int(binary.LittleEndian.Uint32(bz[offPayloadOffset:]))
	end := start + int(binary.LittleEndian.Uint32(bz[offPayloadLength:]))
	if start >= end || end > len(bz) {
		return nil, fmt.Errorf("payload [%d, %d) outside the %d-byte image", start, end, len(bz))
	}
	return bz[start:end], nil
}

// decompressPayload decompresses an xz (with the x86 BCJ filter the
// kernel uses, hence the xz tool) or gzip kernel payload.
func decompressPayload(p []byte) ([]byte, error) {
	switch {
	case bytes.HasPrefix(p, []byte("\xfd7zXZ\x00")):
		xz, err := exec.LookPath("xz")
		if err != nil {
			return nil, fmt.Errorf("xz payload: %w", err)
		}
		cmd := exec.Command(xz, "-dc", "--single-stream")
		cmd.Stdin = bytes.NewReader(p)
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("xz -dc: %w", err)
		}
		return out, nil
	case bytes.HasPrefix(p, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(bytes.NewReader(p))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	}
	return nil, fmt.Errorf("payload compression %x not supported", p[:min(len(p), 4)])
}

// hasPVHNote checks that path is an ELF kernel qemu can boot through PVH.
func hasPVHNote(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		data, err := io.ReadAll(p.Open())
		if err != nil {
			return err
		}
		if hasNote(data, f.ByteOrder, "Xen", xenElfNotePhys32Entry) {
			return nil
		}
	}
	return errors.New("no PVH entry point (Xen ELF note 18)")
}

// hasNote scans ELF note records: namesz, descsz, type, name, desc
// (name and desc padded to 4 bytes).
func hasNote(data []byte, bo binary.ByteOrder, name string, typ uint32) bool {
	for len(data) >= 12 {
		namesz, descsz, t := bo.Uint32(data), bo.Uint32(data[4:]), bo.Uint32(data[8:])
		n := 12 + int(align4(namesz)) + int(align4(descsz))
		if n > len(data) || namesz > uint32(len(data)) {
			return false
		}
		if t == typ && string(bytes.TrimRight(data[12:12+namesz], "\x00")) == name {
			return true
		}
		data = data[n:]
	}
	return false
}

func align4(n uint32) uint32 { return (n + 3) &^ 3 }

// writeAtomic writes data to path through a temporary file and a rename.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
