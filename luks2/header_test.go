package luks2

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestBinaryHeaderSize(t *testing.T) {
	if got := binary.Size(BinaryHeader{}); got != BinaryHeaderSize {
		t.Errorf("binary.Size(BinaryHeader{}) = %d, want %d", got, BinaryHeaderSize)
	}
	var h BinaryHeader
	h.Checksum[0] = 0xAA
	if b := encodeBinary(&h); b[checksumOffset] != 0xAA {
		t.Errorf("checksum field not at offset %d", checksumOffset)
	}
}

func TestValidMetadataSize(t *testing.T) {
	for n, want := range map[uint64]bool{16 << 10: true, 32 << 10: true, 4 << 20: true, 8 << 20: false, 8 << 10: false, 24 << 10: false, 0: false} {
		if got := ValidMetadataSize(n); got != want {
			t.Errorf("ValidMetadataSize(%d) = %v, want %v", n, got, want)
		}
	}
}

// formatted returns an image formatted by us with a fast PBKDF.
func formatted(t *testing.T, o FormatOptions) (string, *os.File, *Header) {
	t.Helper()
	img := newImage(t, 20<<20)
	f := openFileRW(t, img)
	if o.PBKDF.Type == "" {
		o.PBKDF = fastPBKDF["pbkdf2"]
	}
	h, err := Format(f, []byte("pass"), o)
	if err != nil {
		t.Fatalf("Format = %v", err)
	}
	return img, f, h
}

func corrupt(t *testing.T, f *os.File, off int64) {
	t.Helper()
	if _, err := f.WriteAt([]byte{0xff, 0xfe}, off); err != nil {
		t.Fatal(err)
	}
}

func TestRecoverFromSecondary(t *testing.T) {
	for _, tc := range []struct {
		name    string
		off     int64
		wantErr string
	}{
		{"magic", 0, "bad magic"},
		{"checksum", 300, "checksum mismatch"},
		{"json", BinaryHeaderSize + 10, "checksum mismatch"},
		{"size", 8 + 6, "invalid header size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, f, _ := formatted(t, FormatOptions{MetadataSize: 64 << 10})
			corrupt(t, f, tc.off)
			h, err := ReadHeader(f)
			if err != nil {
				t.Fatalf("ReadHeader(corrupt primary) = %v", err)
			}
			if h.PrimaryErr == nil || !strings.Contains(h.PrimaryErr.Error(), tc.wantErr) || h.SecondaryErr != nil {
				t.Errorf("ReadHeader: PrimaryErr = %v, SecondaryErr = %v, want primary %q", h.PrimaryErr, h.SecondaryErr, tc.wantErr)
			}
			if vk, _, err := h.Unlock(f, []byte("pass")); err != nil {
				t.Errorf("Unlock from secondary = %v", err)
			} else {
				vk.Destroy()
			}
			if err := h.Write(f); err != nil {
				t.Fatalf("Write (repair) = %v", err)
			}
			h2, err := ReadHeader(f)
			if err != nil || h2.Damaged() {
				t.Fatalf("ReadHeader(repaired) = %v, %v", err, h2)
			}
			if _, ok := cryptsetup(t, "open", "--test-passphrase", "--key-file", keyFile(t, "pass"), img); !ok {
				t.Errorf("cryptsetup rejects the repaired header")
			}
		})
	}
}

func TestBothCorrupt(t *testing.T) {
	_, f, h := formatted(t, FormatOptions{})
	corrupt(t, f, 300)
	corrupt(t, f, int64(h.MetadataSize())+300)
	_, err := ReadHeader(f)
	if !errors.Is(err, ErrNoHeader) || !strings.Contains(err.Error(), "primary: sha256 checksum mismatch") ||
		!strings.Contains(err.Error(), "secondary:") {
		t.Errorf("ReadHeader(both corrupt) = %v, want ErrNoHeader naming both checks", err)
	}
}

func TestSecondaryCorruptAndStale(t *testing.T) {
	_, f, h := formatted(t, FormatOptions{})
	corrupt(t, f, int64(h.MetadataSize())+300)
	got, err := ReadHeader(f)
	if err != nil || got.PrimaryErr != nil || got.SecondaryErr == nil {
		t.Fatalf("ReadHeader(corrupt secondary) = %v, %+v", err, got)
	}
	// A stale primary: write only the secondary of a newer version.
	if err := h.Write(f); err != nil {
		t.Fatal(err)
	}
	newer := *h
	newer.Binary.SeqID++
	area, err := newer.encode(magicSecondary, h.MetadataSize())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(area, int64(h.MetadataSize())); err != nil {
		t.Fatal(err)
	}
	got, err = ReadHeader(f)
	if err != nil || !errors.Is(got.PrimaryErr, ErrStale) || got.Binary.SeqID != newer.Binary.SeqID {
		t.Errorf("ReadHeader(stale primary) = %v, PrimaryErr %v, seqid %d, want ErrStale and %d", err, got.PrimaryErr, got.Binary.SeqID, newer.Binary.SeqID)
	}
}

func TestTruncated(t *testing.T) {
	img, _, _ := formatted(t, FormatOptions{})
	for _, n := range []int64{0, 100, BinaryHeaderSize, 20 << 10} {
		if err := os.Truncate(img, n); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadHeaderFile(img); !errors.Is(err, ErrNoHeader) {
			t.Errorf("ReadHeaderFile(truncated to %d) = %v, want ErrNoHeader", n, err)
		}
	}
}

// rewriteJSON edits the metadata JSON as a generic map and rewrites both
// header copies with valid checksums, bypassing validation.
func rewriteJSON(t *testing.T, f *os.File, h *Header, edit func(m map[string]any)) {
	t.Helper()
	b, _ := json.Marshal(h.Meta)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	raw, _ := json.Marshal(m)
	area := make([]byte, h.MetadataSize())
	for _, c := range []struct {
		magic [6]byte
		off   uint64
	}{{magicPrimary, 0}, {magicSecondary, h.MetadataSize()}} {
		bh := h.Binary
		bh.Magic, bh.HeaderOffset, bh.Checksum = c.magic, c.off, [64]byte{}
		clear(area)
		copy(area, encodeBinary(&bh))
		copy(area[BinaryHeaderSize:], raw)
		sum, _ := checksum("sha256", area)
		copy(area[checksumOffset:], sum)
		if _, err := f.WriteAt(area, int64(c.off)); err != nil {
			t.Fatal(err)
		}
	}
}

func path(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		m = m[k].(map[string]any)
	}
	return m
}

func TestBadJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"offset number not string", func(m map[string]any) { path(m, "segments", "0")["offset"] = 16777216 }, "decimal string"},
		{"huge offset", func(m map[string]any) { path(m, "segments", "0")["offset"] = "99999999999999999999999" }, "invalid number"},
		{"negative size", func(m map[string]any) { path(m, "keyslots", "0", "area")["size"] = "-4096" }, "invalid number"},
		{"huge key_size", func(m map[string]any) { path(m, "keyslots", "0")["key_size"] = 1e30 }, "key_size"},
		{"string iterations", func(m map[string]any) { path(m, "keyslots", "0", "kdf")["iterations"] = "1000" }, "cannot unmarshal"},
		{"missing config", func(m map[string]any) { delete(m, "config") }, "json_size"},
		{"missing segments", func(m map[string]any) { delete(m, "segments") }, "segments: none"},
		{"area out of bounds", func(m map[string]any) { path(m, "keyslots", "0", "area")["offset"] = "16777216" }, "outside the keyslots area"},
		{"area in header", func(m map[string]any) { path(m, "keyslots", "0", "area")["offset"] = "4096" }, "outside the keyslots area"},
		{"area too small", func(m map[string]any) { path(m, "keyslots", "0", "area")["size"] = "4096" }, "smaller than"},
		{"bad id", func(m map[string]any) { ks := path(m, "keyslots"); ks["32"] = ks["0"] }, "invalid keyslot id"},
		{"digest to missing keyslot", func(m map[string]any) { path(m, "digests", "0")["keyslots"] = []string{"7"} }, "missing keyslot"},
		{"token without type", func(m map[string]any) { path(m, "tokens")["0"] = map[string]any{"keyslots": []string{}} }, "missing type"},
		{"keyslots area above 128 MiB", func(m map[string]any) { path(m, "config")["keyslots_size"] = "1099511627776" }, "keyslots_size 1099511627776 exceeds cryptsetup's maximum 134217728"},
		{"cipher with a space", func(m map[string]any) { path(m, "segments", "0")["encryption"] = "aes-xts-plain64 0 /dev/sda" }, "malformed encryption"},
		{"bad requirements", func(m map[string]any) { path(m, "config")["requirements"] = "x" }, "requirements"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, f, h := formatted(t, FormatOptions{})
			rewriteJSON(t, f, h, tc.edit)
			_, err := ReadHeader(f)
			if !errors.Is(err, ErrNoHeader) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadHeader = %v, want ErrNoHeader mentioning %q", err, tc.want)
			}
		})
	}
}

func TestArgon2LimitBeforeAllocation(t *testing.T) {
	for _, k := range []KDF{
		{Type: "argon2id", Time: 4, Memory: MaxArgon2Memory + 1, CPUs: 1, Salt: []byte{1}},
		{Type: "argon2i", Time: 4, Memory: 1 << 20, CPUs: 200, Salt: []byte{1}},
		{Type: "argon2id", Time: 0, Memory: 64, CPUs: 1, Salt: []byte{1}},
		{Type: "pbkdf2", Hash: "md5", Iterations: 1000, Salt: []byte{1}},
	} {
		if _, err := derive(t.Context(), &k, []byte("p"), 32, nil); err == nil {
			t.Errorf("derive(%+v) succeeded, want a limit error", k)
		}
	}
	k := KDF{Type: "argon2id", Time: 4, Memory: MaxArgon2Memory + 1, CPUs: 1, Salt: []byte{1}}
	if _, err := derive(t.Context(), &k, []byte("p"), 32, nil); !errors.Is(err, ErrKDFLimit) {
		t.Errorf("derive(huge memory) = %v, want ErrKDFLimit", err)
	}
}

// crashDevice simulates a crash: the write at crashAt stores only its
// first keep bytes and fails; later writes fail too.
type crashDevice struct {
	*os.File
	crashAt int64
	keep    int
	crashed bool
}

func (d *crashDevice) WriteAt(p []byte, off int64) (int, error) {
	if d.crashed {
		return 0, errors.New("crashed")
	}
	if off == d.crashAt {
		d.crashed = true
		n, _ := d.File.WriteAt(p[:d.keep], off)
		return n, errors.New("crash")
	}
	return d.File.WriteAt(p, off)
}

// TestCrashDuringWrite interrupts AddKey's header update at each point of
// the documented order (secondary copy, then primary) and checks that the
// volume still opens with the old passphrase, and with the new one when
// the secondary made it to disk.
func TestCrashDuringWrite(t *testing.T) {
	for _, tc := range []struct {
		name    string
		atPrim  bool
		keep    int
		wantNew bool
	}{
		{"torn secondary", false, 1000, false},
		{"secondary written, primary not", true, 0, true},
		{"torn primary", true, 5000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, f, h := formatted(t, FormatOptions{})
			vk := unlockOK(t, h, f, "pass", 0)
			at := int64(h.MetadataSize())
			if tc.atPrim {
				at = 0
			}
			d := &crashDevice{File: f, crashAt: at, keep: tc.keep}
			if _, err := h.AddKey(d, vk, []byte("new"), KeyslotOptions{PBKDF: fastPBKDF["pbkdf2"]}); err == nil {
				t.Fatal("AddKey on a crashing device succeeded")
			}
			h2, err := ReadHeader(f)
			if err != nil {
				t.Fatalf("ReadHeader after crash = %v", err)
			}
			if !h2.Damaged() {
				t.Errorf("ReadHeader after crash reports no damage")
			}
			unlockOK(t, h2, f, "pass", 0)
			_, _, err = h2.Unlock(f, []byte("new"))
			if got := err == nil; got != tc.wantNew {
				t.Errorf("Unlock(new) after crash: opened %v, want %v (%v)", got, tc.wantNew, err)
			}
			if err := h2.Write(f); err != nil {
				t.Fatalf("repair: %v", err)
			}
			if h3, err := ReadHeader(f); err != nil || h3.Damaged() {
				t.Errorf("ReadHeader after repair = %v, damaged", err)
			}
		})
	}
}
