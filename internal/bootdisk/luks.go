package bootdisk

import (
	"crypto/aes"
	"fmt"
	"io"
	"os"

	"golang.org/x/crypto/xts"

	"initos/luks2"
)

// LUKSDataOffset is where the data segment starts (cryptsetup's default).
const LUKSDataOffset = 16 << 20

// luksSector is the data sector size (cryptsetup's default for LUKS2).
const luksSector = 4096

// FormatLUKS writes a LUKS2 header (aes-xts-plain64, 512-bit volume key
// vk, 4096-byte sectors, one passphrase keyslot with fast PBKDF2) at
// partition n of d, and returns it.
func (d *Disk) FormatLUKS(n int, uuid string, pass, vk []byte) (*luks2.Header, error) {
	f, err := os.OpenFile(d.Path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return luks2.Format(region{f, d.Parts[n-1].Start}, pass, luks2.FormatOptions{
		UUID: uuid, VolumeKey: vk, DataOffset: LUKSDataOffset, SectorSize: luksSector,
		PBKDF: luks2.PBKDF{Type: "pbkdf2", Hash: "sha256", Iterations: 1000},
	})
}

// region is a luks2.Device at an offset of a file.
type region struct {
	f   *os.File
	off int64
}

func (r region) ReadAt(p []byte, off int64) (int, error)  { return r.f.ReadAt(p, r.off+off) }
func (r region) WriteAt(p []byte, off int64) (int, error) { return r.f.WriteAt(p, r.off+off) }

// EncryptInto encrypts the file plain into partition n's LUKS data
// segment with the volume key vk, as dm-crypt's aes-xts-plain64 with
// 4096-byte sectors does: each sector encrypted with XTS, its tweak the
// sector's number in 512-byte units (plain64, no iv_large_sectors).
func (d *Disk) EncryptInto(n int, plain string, vk []byte) error {
	c, err := xts.NewCipher(aes.NewCipher, vk)
	if err != nil {
		return err
	}
	in, err := os.Open(plain)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	p := d.Parts[n-1]
	if fi.Size()%luksSector != 0 || fi.Size() > p.Size()-LUKSDataOffset {
		return fmt.Errorf("encrypt %s: %d bytes do not fit partition %d's data segment", plain, fi.Size(), n)
	}
	out, err := os.OpenFile(d.Path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer out.Close()
	buf, enc := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); off < fi.Size(); off += int64(len(buf)) {
		n, err := io.ReadFull(in, buf)
		if err != nil && err != io.ErrUnexpectedEOF {
			return err
		}
		for s := 0; s < n; s += luksSector {
			c.Encrypt(enc[s:s+luksSector], buf[s:s+luksSector], uint64(off+int64(s))/512)
		}
		if _, err := out.WriteAt(enc[:n], p.Start+LUKSDataOffset+off); err != nil {
			return err
		}
	}
	return out.Close()
}
