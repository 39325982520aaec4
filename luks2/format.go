package luks2

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"

	"initos/internal/atomicfile"
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
	Progress  Progress  // PBKDF calibration and derivation; may be nil
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
	if _, err := o.PBKDF.resolve(); err != nil {
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
		o.KeyslotsSize = min(end-2*o.MetadataSize, MaxKeyslotsSize) &^ 4095
	}
	if o.KeyslotsSize%4096 != 0 || o.KeyslotsSize > MaxKeyslotsSize {
		return fmt.Errorf("keyslots size %d is not a multiple of 4096 up to 128 MiB", o.KeyslotsSize)
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

// Format writes a new LUKS2 volume with one keyslot (id 0) for pass to d.
func Format(d Device, pass []byte, o FormatOptions) (*Header, error) {
	return FormatContext(context.Background(), d, pass, o)
}

// FormatContext writes a new LUKS2 volume with one keyslot (id 0) for pass
// to d. Everything is computed in memory first: the options are checked,
// the PBKDF calibrated, the volume key, its digest and the keyslot material
// derived. Only then, when ctx was not cancelled and nothing failed, is d
// written, in this order: the keyslots area (the new keyslot's material,
// zeros around it and over any older secondary header location), then the
// secondary header, then the primary one, each copy whole, with a sync
// after each step. An error or a kill before that point (a signal, the OOM
// killer during argon2) leaves whatever volume d held intact.
func FormatContext(ctx context.Context, d Device, pass []byte, o FormatOptions) (*Header, error) {
	if err := o.resolve(); err != nil {
		return nil, fmt.Errorf("format luks2: %w", err)
	}
	if err := checkRegion(d, "header region", 0, 2*o.MetadataSize+o.KeyslotsSize); err != nil {
		return nil, fmt.Errorf("format luks2: %w", err)
	}
	h, vk, err := newHeader(ctx, &o)
	if err != nil {
		return nil, fmt.Errorf("format luks2: %w", err)
	}
	defer vk.Destroy()
	zero := 0
	k, material, err := h.newKeyslot(ctx, vk.Bytes(), pass, KeyslotOptions{ID: &zero, PBKDF: o.PBKDF, Rand: o.Rand, Progress: o.Progress})
	if err != nil {
		return nil, fmt.Errorf("format luks2: keyslot 0: %w", err)
	}
	defer material.Destroy()
	h.Meta.Keyslots["0"] = k
	h.Meta.Digests["0"].Keyslots = []string{"0"}
	copies, err := h.encodeBoth()
	if err != nil {
		return nil, fmt.Errorf("format luks2: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("format luks2: %w", err)
	}
	if err := writeNewVolume(d, h, &o, material, copies); err != nil {
		return nil, fmt.Errorf("format luks2: %w", err)
	}
	h.Binary.SeqID++
	return h, nil
}

// writeNewVolume writes a formatted volume computed by FormatContext:
// keyslots area (zeroed, with keyslot 0's material) and stale secondary
// header locations, then the secondary and the primary header copies.
func writeNewVolume(d Device, h *Header, o *FormatOptions, material *Secret, copies [2][]byte) error {
	size := o.MetadataSize
	if err := fillRegion(d, 2*size, wipeEnd(d, o)-2*size, false); err != nil {
		return err
	}
	if err := h.writeArea(d, h.Meta.Keyslots["0"], material); err != nil {
		return err
	}
	for i, off := range []uint64{size, 0} {
		if _, err := d.WriteAt(copies[i], int64(off)); err != nil {
			return fmt.Errorf("write header at %d: %w", off, err)
		}
		if err := syncDev(d); err != nil {
			return fmt.Errorf("write header at %d: %w", off, err)
		}
	}
	return nil
}

// wipeEnd is where the zeroed region after the two new header copies
// ends: the keyslots area, extended over every location an older header's
// secondary copy may have (up to 4 MiB + 4 KiB) as long as that stays
// below the data (or, for a detached header, within the file).
func wipeEnd(d Device, o *FormatOptions) uint64 {
	end := 2*o.MetadataSize + o.KeyslotsSize
	limit := o.DataOffset
	if o.Detached {
		limit, _ = deviceSize(d)
	}
	return max(end, min(limit, MaxMetadataSize+BinaryHeaderSize))
}

// newHeader builds the binary header, segment, digest and config of a
// new volume, and its volume key.
func newHeader(ctx context.Context, o *FormatOptions) (*Header, *Secret, error) {
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
	dg, err := newDigest(ctx, vk.Bytes(), o)
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

// newDigest computes the pbkdf2 digest of the volume key (with the
// PBKDF's hash, sha256 by default, as long as the hash's output, like
// cryptsetup): 1000
// iterations with forced PBKDF iterations, else calibrated for 1/16 of
// the iteration time (cryptsetup's 125 ms of 2 s).
func newDigest(ctx context.Context, vk []byte, o *FormatOptions) (*Digest, error) {
	hash := o.PBKDF.hash()
	newHash, err := hashByName(hash)
	if err != nil {
		return nil, err
	}
	n := newHash().Size()
	iter := MinPBKDF2Iterations
	if o.PBKDF.Iterations == 0 {
		it, err := calibratePBKDF2(ctx, hash, n, o.PBKDF.iterTime()/16, o.Progress)
		if err != nil {
			return nil, err
		}
		iter = max(iter, it)
	}
	dg := &Digest{Type: "pbkdf2", Keyslots: []string{}, Segments: []string{"0"}, Hash: hash, Iterations: iter, Salt: make([]byte, 32)}
	if err := randomBytes(o.Rand, dg.Salt); err != nil {
		return nil, err
	}
	k := KDF{Type: "pbkdf2", Hash: hash, Iterations: iter, Salt: dg.Salt}
	sum, err := derive(ctx, &k, vk, n, nil)
	if err != nil {
		return nil, err
	}
	dg.Digest = append([]byte(nil), sum.Bytes()...)
	sum.Destroy()
	return dg, nil
}

// FormatFile formats the device or image at path (see FormatContext).
func FormatFile(path string, size int64, pass []byte, o FormatOptions) (*Header, error) {
	return FormatFileContext(context.Background(), path, size, pass, o)
}

// FormatFileContext formats the device or image at path. An existing path
// is opened exclusively (OpenExclusive: not while mounted, mapped or
// backing a loop device) and must be large enough. If path does not exist
// (a new detached header or image), the volume is built in a temporary
// file (package atomicfile, mode 0600) renamed into place, so a failure
// leaves nothing behind; size is then the new file's size (at least the
// header region).
func FormatFileContext(ctx context.Context, path string, size int64, pass []byte, o FormatOptions) (*Header, error) {
	if _, err := os.Stat(path); err == nil {
		f, err := OpenExclusive(path)
		if err != nil {
			return nil, fmt.Errorf("format: %w", err)
		}
		defer f.Close()
		return FormatDevice(ctx, f, pass, o)
	}
	if !o.Detached && size == 0 {
		return nil, fmt.Errorf("format %s: no such device (only a detached header or a sized image may be created)", path)
	}
	r := o
	if err := r.resolve(); err != nil {
		return nil, fmt.Errorf("format %s: %w", path, err)
	}
	f, err := atomicfile.Create(path, 0o600)
	if err != nil {
		return nil, fmt.Errorf("format: %w", err)
	}
	defer f.Abort()
	if err := f.Truncate(max(size, int64(2*r.MetadataSize+r.KeyslotsSize))); err != nil {
		return nil, fmt.Errorf("format %s: %w", path, err)
	}
	h, err := FormatContext(ctx, f.File, pass, o)
	if err != nil {
		return nil, fmt.Errorf("format %s: %w", path, err)
	}
	if err := f.Commit(); err != nil {
		return nil, fmt.Errorf("format: %w", err)
	}
	return h, nil
}

// FormatDevice formats an open device or image (see FormatContext) after
// checking that it is larger than the data offset (unless detached).
func FormatDevice(ctx context.Context, f *os.File, pass []byte, o FormatOptions) (*Header, error) {
	if err := checkDeviceSize(f, &o); err != nil {
		return nil, fmt.Errorf("format %s: %w", f.Name(), err)
	}
	h, err := FormatContext(ctx, f, pass, o)
	if err != nil {
		return nil, fmt.Errorf("format %s: %w", f.Name(), err)
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
