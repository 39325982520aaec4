package luks2

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
)

// DefaultDataOffset is cryptsetup's default data offset: 16 MiB.
const DefaultDataOffset = 16 << 20

// FormatOptions selects the parameters of a new volume, named like
// cryptsetup's luksFormat flags. The zero value means cryptsetup's
// defaults (aes-xts-plain64, 512-bit key, 4096-byte sectors, argon2id).
type FormatOptions struct {
	Cipher       string // --cipher, default "aes-xts-plain64"
	KeySize      int    // --key-size in bits, default 512 for xts, 256 otherwise
	SectorSize   int    // --sector-size, default 4096
	PBKDF        PBKDF  // keyslot 0 key derivation
	Label        string // --label
	Subsystem    string // --subsystem
	UUID         string // --uuid, random when empty
	MetadataSize uint64 // --luks2-metadata-size, default 16 KiB
	KeyslotsSize uint64 // --luks2-keyslots-size, default: up to the data offset
	// DataOffset is the data segment start in bytes (--offset*512); the
	// default is 16 MiB, or 0 with Detached.
	DataOffset uint64
	// Detached formats a header-only device (--header): the data lives on
	// another device, from DataOffset.
	Detached  bool
	VolumeKey []byte    // use this volume key instead of a random one
	Rand      io.Reader // randomness, crypto/rand when nil
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// resolve fills in defaults and checks the options.
func (o *FormatOptions) resolve() error {
	if o.Cipher == "" {
		o.Cipher = "aes-xts-plain64"
	}
	spec, err := parseCipher(o.Cipher)
	if err != nil {
		return err
	}
	if o.KeySize == 0 {
		o.KeySize = 256
		if spec.mode == "xts" {
			o.KeySize = 512
		}
	}
	if o.KeySize%8 != 0 {
		return fmt.Errorf("key size %d is not a multiple of 8", o.KeySize)
	}
	if err := spec.checkKeySize(o.KeySize / 8); err != nil {
		return err
	}
	if o.VolumeKey != nil && len(o.VolumeKey) != o.KeySize/8 {
		return fmt.Errorf("volume key has %d bytes, want %d", len(o.VolumeKey), o.KeySize/8)
	}
	if o.SectorSize == 0 {
		o.SectorSize = 4096
	}
	if s := o.SectorSize; s < 512 || s > 4096 || s&(s-1) != 0 {
		return fmt.Errorf("sector size %d is not a power of two in 512..4096", s)
	}
	if o.MetadataSize == 0 {
		o.MetadataSize = DefaultMetadataSize
	}
	if !ValidMetadataSize(o.MetadataSize) {
		return fmt.Errorf("metadata size %d is not a power of two in 16 KiB..4 MiB", o.MetadataSize)
	}
	if err := o.PBKDF.check(); err != nil {
		return fmt.Errorf("keyslot 0: %w", err)
	}
	return o.resolveLayout()
}

func (o *FormatOptions) resolveLayout() error {
	if o.DataOffset == 0 && !o.Detached {
		o.DataOffset = DefaultDataOffset
	}
	if o.DataOffset%uint64(o.SectorSize) != 0 {
		return fmt.Errorf("data offset %d is not a multiple of the sector size %d", o.DataOffset, o.SectorSize)
	}
	if o.KeyslotsSize == 0 {
		end := o.DataOffset
		if o.Detached {
			end = DefaultDataOffset
		}
		if end < 2*o.MetadataSize+1<<20 {
			return fmt.Errorf("data offset %d leaves no room for keyslots after two %d-byte headers", end, o.MetadataSize)
		}
		o.KeyslotsSize = end - 2*o.MetadataSize
	}
	if o.KeyslotsSize%4096 != 0 || o.KeyslotsSize > 1<<30 {
		return fmt.Errorf("keyslots size %d is not a multiple of 4096 up to 1 GiB", o.KeyslotsSize)
	}
	if !o.Detached && 2*o.MetadataSize+o.KeyslotsSize > o.DataOffset {
		return fmt.Errorf("headers and keyslots (%d bytes) overlap the data offset %d", 2*o.MetadataSize+o.KeyslotsSize, o.DataOffset)
	}
	if o.UUID != "" && !uuidRE.MatchString(o.UUID) {
		return fmt.Errorf("invalid uuid %q", o.UUID)
	}
	return nil
}

// newUUID returns a random (version 4) UUID string.
func newUUID(r io.Reader) (string, error) {
	var u [16]byte
	if err := randomBytes(r, u[:]); err != nil {
		return "", err
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:]), nil
}

// Format writes a new LUKS2 header with one keyslot (id 0) for pass to
// d, in this order: the header region is zeroed, the keyslot material
// written, then the secondary and finally the primary header.
func Format(d Device, pass []byte, o FormatOptions) (*Header, error) {
	if err := o.resolve(); err != nil {
		return nil, fmt.Errorf("format luks2: %w", err)
	}
	h, vk, err := newHeader(&o)
	if err != nil {
		return nil, fmt.Errorf("format luks2: %w", err)
	}
	defer vk.Destroy()
	if err := zeroRegion(d, 2*o.MetadataSize+o.KeyslotsSize); err != nil {
		return nil, fmt.Errorf("format luks2: %w", err)
	}
	zero := 0
	k, err := h.writeKeyslot(d, vk.Bytes(), pass, KeyslotOptions{ID: &zero, PBKDF: o.PBKDF, Rand: o.Rand})
	if err != nil {
		return nil, fmt.Errorf("format luks2: keyslot 0: %w", err)
	}
	h.Meta.Keyslots["0"] = k
	h.Meta.Digests["0"].Keyslots = []string{"0"}
	if err := h.Write(d); err != nil {
		return nil, fmt.Errorf("format luks2: %w", err)
	}
	return h, nil
}

// newHeader builds the binary header, segment, digest and config of a
// new volume, and its volume key.
func newHeader(o *FormatOptions) (*Header, *Secret, error) {
	h := &Header{}
	b := &h.Binary
	b.Version, b.HeaderSize = version2, o.MetadataSize
	if o.UUID == "" {
		u, err := newUUID(o.Rand)
		if err != nil {
			return nil, nil, err
		}
		o.UUID = u
	}
	for _, f := range []struct {
		name string
		dst  []byte
		v    string
	}{{"label", b.Label[:], o.Label}, {"subsystem", b.Subsystem[:], o.Subsystem}, {"uuid", b.UUID[:], o.UUID}, {"checksum_alg", b.ChecksumAlg[:], "sha256"}} {
		if err := setCString(f.name, f.dst, f.v); err != nil {
			return nil, nil, err
		}
	}
	if err := randomBytes(o.Rand, b.Salt[:]); err != nil {
		return nil, nil, err
	}
	vk := NewSecret(o.KeySize / 8)
	if o.VolumeKey != nil {
		copy(vk.Bytes(), o.VolumeKey)
	} else if err := randomBytes(o.Rand, vk.Bytes()); err != nil {
		vk.Destroy()
		return nil, nil, err
	}
	dg, err := newDigest(vk.Bytes(), o)
	if err != nil {
		vk.Destroy()
		return nil, nil, err
	}
	h.Meta = &Metadata{
		Keyslots: map[string]*Keyslot{},
		Tokens:   map[string]json.RawMessage{},
		Segments: map[string]*Segment{"0": {Type: "crypt", Offset: U64(o.DataOffset), Size: "dynamic",
			Encryption: o.Cipher, SectorSize: o.SectorSize}},
		Digests: map[string]*Digest{"0": dg},
		Config:  Config{JSONSize: U64(o.MetadataSize - BinaryHeaderSize), KeyslotsSize: U64(o.KeyslotsSize)},
	}
	return h, vk, nil
}

// newDigest computes the pbkdf2-sha256 digest of the volume key: 1000
// iterations with forced PBKDF iterations, else benchmarked for 1/16 of
// the iteration time (cryptsetup's 125 ms of 2 s).
func newDigest(vk []byte, o *FormatOptions) (*Digest, error) {
	iter := MinPBKDF2Iterations
	if o.PBKDF.Iterations == 0 {
		n, err := benchPBKDF2("sha256", 32, o.PBKDF.iterTime()/16)
		if err != nil {
			return nil, err
		}
		iter = max(iter, n)
	}
	dg := &Digest{Type: "pbkdf2", Keyslots: []string{}, Segments: []string{"0"}, Hash: "sha256", Iterations: iter, Salt: make([]byte, 32)}
	if err := randomBytes(o.Rand, dg.Salt); err != nil {
		return nil, err
	}
	k := KDF{Type: "pbkdf2", Hash: "sha256", Iterations: iter, Salt: dg.Salt}
	sum, err := derive(&k, vk, 32)
	if err != nil {
		return nil, err
	}
	dg.Digest = append([]byte(nil), sum.Bytes()...)
	sum.Destroy()
	return dg, nil
}

// zeroRegion overwrites the first n bytes of d with zeros.
func zeroRegion(d Device, n uint64) error {
	buf := make([]byte, 1<<20)
	for off := uint64(0); off < n; off += uint64(len(buf)) {
		chunk := buf[:min(uint64(len(buf)), n-off)]
		if _, err := d.WriteAt(chunk, int64(off)); err != nil {
			return fmt.Errorf("wipe header region at %d: %w", off, err)
		}
	}
	return nil
}

// FormatFile formats the device or image at path. If path does not exist
// (a new detached header or image), the volume is built in a temp file
// beside it and renamed into place, so a failure leaves nothing behind;
// size is then the new file's size (0: just the header region).
func FormatFile(path string, size int64, pass []byte, o FormatOptions) (*Header, error) {
	if _, err := os.Stat(path); err == nil {
		f, err := openFile(path, true)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := checkDeviceSize(f, &o); err != nil {
			return nil, fmt.Errorf("format %s: %w", path, err)
		}
		return Format(f, pass, o)
	}
	if !o.Detached && size == 0 {
		return nil, fmt.Errorf("format %s: no such device (only a detached header or a sized image may be created)", path)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".luks2-*")
	if err != nil {
		return nil, fmt.Errorf("format %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if size > 0 {
		if err := tmp.Truncate(size); err != nil {
			return nil, fmt.Errorf("format %s: %w", path, err)
		}
	}
	h, err := Format(tmp, pass, o)
	if err != nil {
		return nil, fmt.Errorf("format %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("format %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("format %s: %w", path, err)
	}
	return h, nil
}

// checkDeviceSize refuses a non-detached format of a device too small to
// hold the header region plus one data sector.
func checkDeviceSize(f *os.File, o *FormatOptions) error {
	if o.Detached {
		return nil
	}
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	off := o.DataOffset
	if off == 0 {
		off = DefaultDataOffset
	}
	if uint64(end) <= off {
		return fmt.Errorf("device has %d bytes, not more than the data offset %d", end, off)
	}
	return nil
}
