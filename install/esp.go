package install

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"github.com/diskfs/go-diskfs/filesystem/fat32"

	"initos/authenticode"
	"initos/pecoff"
)

// ESPFile is a file the installer puts on every ESP.
type ESPFile struct {
	Path string // on the ESP: "/EFI/Linux/initos.efi"
	Src  string // the file to copy
	Data []byte // or the content itself (Src empty)
	Size int64
	Sum  [32]byte // SHA-256 of the content (USB images report it)
	// Check verifies the content read back from the ESP (Authenticode,
	// verity), after its size and bytes matched the source.
	Check func(r io.ReaderAt, size int64) error
}

// espFiles lists the ESP content of the artifacts: the UKI as
// EFI/BOOT/BOOTX64.EFI (BOOTAA64.EFI on arm64) and EFI/Linux/initos.efi,
// and the modules image as initos/modules-<release>.sqfs.
func (a *Artifacts) espFiles() []ESPFile {
	uki := func(p string) ESPFile {
		return ESPFile{Path: p, Src: a.UKIPath, Size: a.UKISize, Check: a.checkUKI}
	}
	return []ESPFile{
		uki("/EFI/BOOT/BOOT" + a.Arch + ".EFI"),
		uki("/EFI/Linux/initos.efi"),
		{Path: "/initos/" + a.ModulesName, Src: a.ModulesPath, Size: a.ModulesSize, Check: a.checkModules},
	}
}

// checkUKI verifies a UKI read back: its Authenticode signature against
// the trusted certificates.
func (a *Artifacts) checkUKI(r io.ReaderAt, size int64) error {
	b := make([]byte, size)
	if _, err := r.ReadAt(b, 0); err != nil && err != io.EOF {
		return err
	}
	img, err := pecoff.Parse(b)
	if err != nil {
		return err
	}
	_, err = authenticode.Verify(img, a.Trusted)
	return err
}

// checkModules verifies a modules image read back against the expected
// verity root hash: every data and hash block.
func (a *Artifacts) checkModules(r io.ReaderAt, _ int64) error {
	return a.Verity.Verify(r, r)
}

// espLabel is the FAT volume label of ESP n.
func espLabel(n int) string { return fmt.Sprintf("INITOS_%c", 'A'+n-1) }

// openFAT opens a FAT32 filesystem at off/size of dev for go-diskfs. A
// new one gets a volume ID from the clock unless the label ends in '!'
// (reproducible images: the ID is 0).
func openFAT(dev *os.File, off, size int64, sectorSize int, create bool, label string) (*fat32.FileSystem, error) {
	b := file.New(dev, false)
	if create {
		repro := strings.HasSuffix(label, "!")
		return fat32.Create(b, size, off, int64(sectorSize), strings.TrimSuffix(label, "!"), repro)
	}
	return fat32.Read(b, size, off, int64(sectorSize))
}

// formatESP makes a FAT32 filesystem in off/size of dev and writes the
// files, each whole: its clusters are allocated in one go (one FAT
// update) and the content is written straight into their disk ranges.
func formatESP(dev *os.File, off, size int64, sectorSize int, label string, files []ESPFile) error {
	if err := zeroRange(dev, off, min(size, probeSpan)); err != nil {
		return fmt.Errorf("clear old signatures: %w", err)
	}
	fsys, err := openFAT(dev, off, fatSafeSize(size, sectorSize), sectorSize, true, label)
	if err != nil {
		return fmt.Errorf("make FAT32: %w", err)
	}
	for _, f := range files {
		if err := putFile(fsys, dev, f); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
	}
	if err := fixFAT(dev, dev, off); err != nil {
		return fmt.Errorf("fix up FAT32: %w", err)
	}
	return nil
}

// fatSafeSize returns the largest size up to size for which go-diskfs
// v1.9.4 sizes the FAT right. Its sectors per FAT, ceil(4*(sectors-32) /
// (cluster bytes + 8)), leaves out the two reserved FAT entries, so for
// some sizes (64 MiB is one) the FAT lacks entries for its last
// clusters, which fsck.fat rejects; a few sectors less avoid it. The
// filesystem may end before its partition does.
func fatSafeSize(size int64, sectorSize int) int64 {
	ss := int64(sectorSize)
	cluster := int64(4 << 10)
	switch {
	case size <= 260<<20:
		cluster = 512
	case size > 8<<30 && size <= 16<<30:
		cluster = 8 << 10
	case size > 16<<30 && size <= 32<<30:
		cluster = 16 << 10
	case size > 32<<30:
		cluster = 32 << 10
	}
	spc := max(cluster/ss, 1)
	for {
		total := size/ss - 32
		perFAT := (4*total + ss*spc + 8 - 1) / (ss*spc + 8)
		clusters := (total - 2*perFAT) / spc
		if perFAT*ss/4 >= clusters+2 {
			return size
		}
		size -= ss
	}
}

func zeroRange(dev *os.File, off, n int64) error {
	_, err := dev.WriteAt(make([]byte, n), off)
	return err
}

// putFile writes one file: the directories, a one-byte write at its last
// offset (go-diskfs allocates every cluster and writes the FAT once),
// then the content into the clusters' disk ranges.
func putFile(fsys *fat32.FileSystem, dev *os.File, f ESPFile) error {
	if err := fsys.Mkdir(path.Dir(f.Path)); err != nil {
		return fmt.Errorf("mkdir %s: %w", path.Dir(f.Path), err)
	}
	h, err := fsys.OpenFile(f.Path, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return err
	}
	fl, ok := h.(*fat12.File)
	if !ok {
		return fmt.Errorf("go-diskfs returned a %T, not a FAT file", h)
	}
	if f.Size == 0 {
		return nil
	}
	if _, err := fl.Seek(f.Size-1, io.SeekStart); err != nil {
		return err
	}
	if _, err := fl.Write([]byte{0}); err != nil {
		return fmt.Errorf("allocate %d bytes: %w", f.Size, err)
	}
	ranges, err := fl.GetDiskRanges()
	if err != nil {
		return err
	}
	if f.Src == "" {
		return copyRanges(dev, fsys.Start(), ranges, bytes.NewReader(f.Data), f.Size)
	}
	src, err := os.Open(f.Src)
	if err != nil {
		return err
	}
	defer src.Close()
	return copyRanges(dev, fsys.Start(), ranges, src, f.Size)
}

// copyRanges copies size bytes from src into the disk ranges.
func copyRanges(dev *os.File, base int64, ranges []fat12.DiskRange, src io.Reader, size int64) error {
	buf := make([]byte, 4<<20)
	left := size
	for _, r := range ranges {
		pos, end := base+int64(r.Offset), base+int64(r.Offset)+min(int64(r.Length), left)
		for pos < end {
			n, err := io.ReadFull(src, buf[:min(int64(len(buf)), end-pos)])
			if err != nil {
				return fmt.Errorf("read the source: %w", err)
			}
			if _, err := dev.WriteAt(buf[:n], pos); err != nil {
				return err
			}
			pos += int64(n)
			left -= int64(n)
		}
	}
	if left != 0 {
		return fmt.Errorf("the clusters hold %d bytes fewer than the file", left)
	}
	return nil
}

// checkESP reads the ESP back and verifies every file: present, its size,
// its bytes equal to the source's, then its own Check.
func checkESP(dev *os.File, off, size int64, sectorSize int, files []ESPFile) error {
	fsys, err := openFAT(dev, off, size, sectorSize, false, "")
	if err != nil {
		return fmt.Errorf("read FAT32: %w", err)
	}
	for _, f := range files {
		if err := checkFile(fsys, dev, f); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
	}
	return nil
}

func checkFile(fsys *fat32.FileSystem, dev *os.File, f ESPFile) error {
	h, err := fsys.OpenFile(f.Path, os.O_RDONLY)
	if err != nil {
		return fmt.Errorf("missing: %w", err)
	}
	fl := h.(*fat12.File)
	st, _ := fl.Stat()
	if st.Size() != f.Size {
		return fmt.Errorf("size %d, want %d", st.Size(), f.Size)
	}
	ranges, err := fl.GetDiskRanges()
	if err != nil {
		return err
	}
	r := &rangeReader{dev: dev, base: fsys.Start(), ranges: ranges, size: f.Size}
	if err := sameContent(r, f); err != nil {
		return err
	}
	if f.Check != nil {
		if err := f.Check(r, f.Size); err != nil {
			return fmt.Errorf("read back: %w", err)
		}
	}
	return nil
}

// sameContent compares what was read back with the source, 1 MiB at a
// time (a comparison, not a hash: the sources were verified in preflight).
func sameContent(r io.ReaderAt, f ESPFile) error {
	var src io.Reader = bytes.NewReader(f.Data)
	if f.Src != "" {
		s, err := os.Open(f.Src)
		if err != nil {
			return err
		}
		defer s.Close()
		src = s
	}
	a, b := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); off < f.Size; {
		n := int(min(int64(len(a)), f.Size-off))
		if _, err := r.ReadAt(a[:n], off); err != nil && err != io.EOF {
			return fmt.Errorf("read back: %w", err)
		}
		if _, err := io.ReadFull(src, b[:n]); err != nil {
			return fmt.Errorf("read the source: %w", err)
		}
		if !bytes.Equal(a[:n], b[:n]) {
			i := 0
			for a[i] == b[i] {
				i++
			}
			return fmt.Errorf("content differs from %s at byte %d", f.Src, off+int64(i))
		}
		off += int64(n)
	}
	return nil
}

// rangeReader reads a file through its cluster ranges on the device.
type rangeReader struct {
	dev    io.ReaderAt
	base   int64
	ranges []fat12.DiskRange
	size   int64
}

func (r *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	short := int64(len(p)) > r.size-off
	if short {
		p = p[:r.size-off]
	}
	n := 0
	for _, rg := range r.ranges {
		l := int64(rg.Length)
		if off >= l {
			off -= l
			continue
		}
		if n == len(p) {
			break
		}
		want := min(int64(len(p)-n), l-off)
		m, err := r.dev.ReadAt(p[n:n+int(want)], r.base+int64(rg.Offset)+off)
		n += m
		if err != nil {
			return n, err
		}
		off = 0
	}
	if n < len(p) || short {
		return n, io.EOF
	}
	return n, nil
}
