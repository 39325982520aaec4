package install

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/uuid"

	"initos/pecoff"
)

// usbGUID derives a GUID from the image's content, so the same inputs
// give the same image.
func usbGUID(seed []byte, name string) string {
	h := sha256.Sum256(append(append([]byte{}, seed...), name...))
	u, _ := uuid.FromBytes(h[:16])
	u[6] = u[6]&0x0f | 0x40 // version 4 layout, as random GUIDs have
	u[8] = u[8]&0x3f | 0x80
	return strings.ToUpper(u.String())
}

// usbLayout plans the image: the ESP from 1 MiB, the recovery after it.
func usbLayout(espSize, recSize int64, seed []byte) (*Layout, int64) {
	const mib = 1 << 20
	l := &Layout{SectorSize: 512, DiskGUID: usbGUID(seed, "disk")}
	l.Partitions = append(l.Partitions, Partition{Number: 1, Name: NameUSBESP, Type: TypeESP, GUID: usbGUID(seed, "esp"),
		Start: mib / 512, Sectors: uint64(espSize / 512)})
	end := int64(mib) + espSize
	if recSize > 0 {
		l.Partitions = append(l.Partitions, Partition{Number: 2, Name: NameUSBRecovery, Type: TypeLinuxData, GUID: usbGUID(seed, "recovery"),
			Start: uint64(end / 512), Sectors: uint64(recSize / 512)})
		end += recSize
	}
	return l, end + mib
}

// fitESP sizes an ESP for the files: their bytes, a cluster of slack and
// directory room each, the FATs, 8 MiB spare; at least 64 MiB.
func fitESP(files []ESPFile) int64 {
	need := int64(8 << 20)
	for _, f := range files {
		need += f.Size + 8192
	}
	need += need / 50
	return max(64<<20, (need+(1<<20)-1)&^(1<<20-1))
}

func writeUSB(f *os.File, out string, o USBOptions, files []ESPFile, cfgJSON []byte) (*USBImage, error) {
	seed := sha256.New()
	for _, fl := range files {
		fmt.Fprintf(seed, "%s %x\n", fl.Path, fl.Sum)
	}
	var recSize int64
	var recSum [32]byte
	if o.Recovery != "" {
		rf := ESPFile{Src: o.Recovery}
		if err := statRecovery(&rf); err != nil {
			return nil, err
		}
		recSize, recSum = (rf.Size+(1<<20)-1)&^(1<<20-1), rf.Sum
		fmt.Fprintf(seed, "recovery %x\n", rf.Sum)
	}
	espSize := int64(o.ESPSize)
	if espSize == 0 {
		espSize = fitESP(files)
	}
	l, total := usbLayout(espSize, recSize, seed.Sum(nil))
	if err := f.Truncate(total); err != nil {
		return nil, err
	}
	if err := l.toGPT(512).Write(f, total); err != nil {
		return nil, fmt.Errorf("write the GPT: %w", err)
	}
	espOff, _ := l.Offset(l.Part(1))
	if err := formatESP(f, espOff, espSize, 512, "INITOS_USB!", files); err != nil {
		return nil, fmt.Errorf("ESP: %w", err)
	}
	if o.Recovery != "" {
		if err := copyRecovery(f, l, o.Recovery); err != nil {
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := checkESP(f, espOff, espSize, 512, files); err != nil {
		return nil, fmt.Errorf("verify the ESP: %w", err)
	}
	img := &USBImage{Path: out, Size: Size(total), Layout: l}
	for _, fl := range files {
		img.Files = append(img.Files, USBFile{Path: fl.Path, Size: fl.Size, SHA256: fmt.Sprintf("%x", fl.Sum)})
	}
	if o.Recovery != "" {
		img.Recovery = fmt.Sprintf("%x", recSum)
	}
	return img, nil
}

func statRecovery(rf *ESPFile) error {
	var err error
	if rf.Size, rf.Sum, err = sumFile(rf.Src); err != nil {
		return fmt.Errorf("recovery image: %w", err)
	}
	if rf.Size == 0 {
		return fmt.Errorf("recovery image %s is empty", rf.Src)
	}
	return nil
}

// copyRecovery writes the recovery image into partition 2 and reads it
// back.
func copyRecovery(f *os.File, l *Layout, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("recovery image: %w", err)
	}
	defer in.Close()
	off, size := l.Offset(l.Part(2))
	h := sha256.New()
	if _, err := io.Copy(io.NewOffsetWriter(f, off), io.TeeReader(in, h)); err != nil {
		return fmt.Errorf("recovery image: %w", err)
	}
	back := sha256.New()
	st, _ := in.Stat()
	if _, err := io.Copy(back, io.NewSectionReader(f, off, min(st.Size(), size))); err != nil {
		return fmt.Errorf("recovery image: read back: %w", err)
	}
	if !bytes.Equal(h.Sum(nil), back.Sum(nil)) {
		return fmt.Errorf("recovery image: read back differs")
	}
	return nil
}

// RecoveryRootHash returns the dm-verity root hash (hex) of a recovery
// image (a squashfs with its verity tree appended at its 4 KiB aligned
// end), computed from its data, once the appended tree verified against
// it: what the installer UKI's initos.recovery= must say.
func RecoveryRootHash(path string) (string, error) {
	f, size, err := openSized(path)
	if err != nil {
		return "", fmt.Errorf("recovery image: %w", err)
	}
	defer f.Close()
	res, err := openModules(f, size, nil)
	if err != nil {
		return "", fmt.Errorf("recovery image %s: %w", path, err)
	}
	return res.RootHashHex(), nil
}

// checkRecovery makes sure the installer UKI's signed command line names
// the recovery image's verity root hash (RecoveryArg), and that the image
// verifies against it: otherwise the installer would fail only at boot.
func checkRecovery(uki, recovery string) error {
	b, err := os.ReadFile(uki)
	if err != nil {
		return fmt.Errorf("installer UKI: %w", err)
	}
	img, err := pecoff.Parse(b)
	if err != nil {
		return fmt.Errorf("installer UKI %s: %w", uki, err)
	}
	var want string
	for _, w := range strings.Fields(string(img.Section(".cmdline"))) {
		if k, v, _ := strings.Cut(w, "="); k == RecoveryArg {
			want = v
		}
	}
	f, size, err := openSized(recovery)
	if err != nil {
		return fmt.Errorf("recovery image: %w", err)
	}
	defer f.Close()
	if want == "" {
		res, err := openModules(f, size, nil)
		if err != nil {
			return fmt.Errorf("recovery image %s: %w", recovery, err)
		}
		return fmt.Errorf("installer UKI %s: its command line lacks %s=%x (the recovery image's verity root hash)", uki, RecoveryArg, res.RootHash)
	}
	root, err := hex.DecodeString(want)
	if err != nil || len(root) == 0 {
		return fmt.Errorf("installer UKI %s: %s=%q is not a hex root hash", uki, RecoveryArg, want)
	}
	if _, err := openModules(f, size, root); err != nil {
		return fmt.Errorf("recovery image %s does not verify against the installer UKI's %s=%s: %w", recovery, RecoveryArg, want, err)
	}
	return nil
}
