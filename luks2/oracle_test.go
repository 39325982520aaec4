package luks2

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// matrixCase is one volume layout of the interop matrix.
type matrixCase struct {
	pbkdf      string
	cipher     string
	keyBits    int
	sectorSize int
	metaSize   uint64
}

func (c matrixCase) String() string {
	return fmt.Sprintf("%s/%s-%d/sector%d/meta%dk", c.pbkdf, c.cipher, c.keyBits, c.sectorSize, c.metaSize>>10)
}

// matrix crosses every PBKDF with every cipher and key size, rotating
// sector sizes and JSON area sizes through the cases so each value of each
// dimension appears with several others.
func matrix() []matrixCase {
	ciphers := []struct {
		c string
		k int
	}{{"aes-xts-plain64", 512}, {"aes-xts-plain64", 256}, {"aes-cbc-essiv:sha256", 256}, {"aes-cbc-plain64", 128}}
	sectors := []int{512, 4096, 1024}
	metas := []uint64{16 << 10, 64 << 10, 4 << 20, 32 << 10}
	var out []matrixCase
	i := 0
	for _, p := range []string{"argon2id", "argon2i", "pbkdf2"} {
		for _, c := range ciphers {
			out = append(out, matrixCase{p, c.c, c.k, sectors[i%len(sectors)], metas[i%len(metas)]})
			i++
		}
	}
	return out
}

func (c matrixCase) options() FormatOptions {
	return FormatOptions{Cipher: c.cipher, KeySize: c.keyBits, SectorSize: c.sectorSize,
		MetadataSize: c.metaSize, PBKDF: fastPBKDF[c.pbkdf], Label: "initos-" + c.pbkdf}
}

func (c matrixCase) cryptsetupArgs() []string {
	return append([]string{"--type", "luks2", "--cipher", c.cipher, "--key-size", strconv.Itoa(c.keyBits),
		"--sector-size", strconv.Itoa(c.sectorSize), "--luks2-metadata-size", strconv.FormatUint(c.metaSize, 10),
		"--label", "theirs"}, pbkdfArgs(fastPBKDF[c.pbkdf])...)
}

// TestOursOpenedByCryptsetup formats with our code and checks cryptsetup
// parses the header, accepts the passphrase and rejects a wrong one, and
// that after cryptsetup adds and kills keyslots we still open it.
func TestOursOpenedByCryptsetup(t *testing.T) {
	for _, c := range matrix() {
		t.Run(c.String(), func(t *testing.T) {
			img := newImage(t, 20<<20)
			f := openFileRW(t, img)
			if _, err := Format(f, []byte("right"), c.options()); err != nil {
				t.Fatalf("Format(%v) = %v", c, err)
			}
			dump, ok := cryptsetup(t, "luksDump", img)
			if !ok || !bytes.Contains(dump, []byte(c.cipher)) || !bytes.Contains(dump, []byte("initos-"+c.pbkdf)) {
				t.Fatalf("cryptsetup luksDump = %s, ok %v", dump, ok)
			}
			if _, ok := cryptsetup(t, "open", "--test-passphrase", "--key-file", keyFile(t, "right"), img); !ok {
				t.Errorf("cryptsetup open --test-passphrase (right) failed")
			}
			if _, ok := cryptsetup(t, "open", "--test-passphrase", "--key-file", keyFile(t, "wrong"), img); ok {
				t.Errorf("cryptsetup open --test-passphrase (wrong) succeeded")
			}
			checkTheirEdits(t, img, c)
		})
	}
}

// checkTheirEdits lets cryptsetup add a key and kill ours, then opens the
// volume with our code and compares the volume key with cryptsetup's.
func checkTheirEdits(t *testing.T, img string, c matrixCase) {
	t.Helper()
	args := append([]string{"luksAddKey", "--key-file", keyFile(t, "right"), img, keyFile(t, "added")}, pbkdfArgs(fastPBKDF[c.pbkdf])...)
	if _, ok := cryptsetup(t, args...); !ok {
		t.Fatalf("cryptsetup luksAddKey failed")
	}
	if _, ok := cryptsetup(t, "luksKillSlot", "--key-file", keyFile(t, "added"), img, "0"); !ok {
		t.Fatalf("cryptsetup luksKillSlot 0 failed")
	}
	want := dumpVolumeKey(t, img, keyFile(t, "added"))
	f := openFileRW(t, img)
	h, err := ReadHeader(f)
	if err != nil {
		t.Fatalf("ReadHeader after cryptsetup edits = %v", err)
	}
	if _, _, err := h.Unlock(f, []byte("right")); err == nil {
		t.Errorf("Unlock(killed passphrase) succeeded")
	}
	vk, slot, err := h.Unlock(f, []byte("added"))
	if err != nil {
		t.Fatalf("Unlock(added) = %v", err)
	}
	defer vk.Destroy()
	if slot != 1 || !bytes.Equal(vk.Bytes(), want) {
		t.Errorf("Unlock(added) = slot %d key %x, want slot 1 key %x", slot, vk.Bytes(), want)
	}
}

// TestOursEightKeyslots fills 8 keyslots with our code; cryptsetup opens
// each passphrase.
func TestOursEightKeyslots(t *testing.T) {
	img := newImage(t, 20<<20)
	f := openFileRW(t, img)
	h, err := Format(f, []byte("pass0"), FormatOptions{PBKDF: fastPBKDF["pbkdf2"]})
	if err != nil {
		t.Fatal(err)
	}
	vk, _, err := h.Unlock(f, []byte("pass0"))
	if err != nil {
		t.Fatal(err)
	}
	defer vk.Destroy()
	for i := 1; i < 8; i++ {
		p := fastPBKDF[[]string{"argon2id", "argon2i", "pbkdf2"}[i%3]]
		if id, err := h.AddKey(f, vk.Bytes(), []byte("pass"+strconv.Itoa(i)), KeyslotOptions{PBKDF: p}); err != nil || id != i {
			t.Fatalf("AddKey #%d = %d, %v", i, id, err)
		}
	}
	for i := 0; i < 8; i++ {
		args := []string{"open", "--test-passphrase", "--key-slot", strconv.Itoa(i), "--key-file", keyFile(t, "pass"+strconv.Itoa(i)), img}
		if _, ok := cryptsetup(t, args...); !ok {
			t.Errorf("cryptsetup open --test-passphrase keyslot %d failed", i)
		}
	}
	if got := dumpVolumeKey(t, img, keyFile(t, "pass7")); !bytes.Equal(got, vk.Bytes()) {
		t.Errorf("cryptsetup volume key = %x, want %x", got, vk.Bytes())
	}
}

// TestCryptsetupOpenedByUs formats with cryptsetup over the matrix, adds
// a keyslot and a token with cryptsetup, and opens every keyslot with our
// code, comparing volume keys with luksDump --dump-volume-key.
func TestCryptsetupOpenedByUs(t *testing.T) {
	for _, c := range matrix() {
		t.Run(c.String(), func(t *testing.T) {
			img := newImage(t, 20<<20)
			args := append([]string{"luksFormat", "--key-file", keyFile(t, "first")}, c.cryptsetupArgs()...)
			if _, ok := cryptsetup(t, append(args, img)...); !ok {
				t.Fatal("cryptsetup luksFormat failed")
			}
			add := append([]string{"luksAddKey", "--key-file", keyFile(t, "first"), img, keyFile(t, "second")}, pbkdfArgs(fastPBKDF["pbkdf2"])...)
			if _, ok := cryptsetup(t, add...); !ok {
				t.Fatal("cryptsetup luksAddKey failed")
			}
			importToken(t, img, `{"type":"initos-test","keyslots":["1"],"note":"x"}`)
			want := dumpVolumeKey(t, img, keyFile(t, "first"))
			f := openFileRW(t, img)
			h, err := ReadHeader(f)
			if err != nil {
				t.Fatalf("ReadHeader = %v", err)
			}
			if h.Damaged() || h.Label() != "theirs" {
				t.Errorf("ReadHeader: damaged %v %v, label %q", h.PrimaryErr, h.SecondaryErr, h.Label())
			}
			for i, pass := range []string{"first", "second"} {
				vk, slot, err := h.Unlock(f, []byte(pass))
				if err != nil || slot != i || !bytes.Equal(vk.Bytes(), want) {
					t.Errorf("Unlock(%q) = slot %d, err %v, key match %v", pass, slot, err, err == nil && bytes.Equal(vk.Bytes(), want))
				}
				vk.Destroy()
			}
			if _, _, err := h.Unlock(f, []byte("wrong")); err == nil {
				t.Errorf("Unlock(wrong) succeeded")
			}
			if ids, toks := h.Tokens(); len(ids) != 1 || toks[0].Type != "initos-test" {
				t.Errorf("Tokens() = %v %v, want one initos-test token", ids, toks)
			}
		})
	}
}

// importToken imports a token JSON with cryptsetup token import.
func importToken(t *testing.T, img, js string) {
	t.Helper()
	p := keyFile(t, js)
	if _, ok := cryptsetup(t, "token", "import", "--json-file", p, img); !ok {
		t.Fatal("cryptsetup token import failed")
	}
}

// TestTokensInterop adds a token with our code; cryptsetup exports it.
func TestTokensInterop(t *testing.T) {
	img := newImage(t, 20<<20)
	f := openFileRW(t, img)
	h, err := Format(f, []byte("p"), FormatOptions{PBKDF: fastPBKDF["pbkdf2"]})
	if err != nil {
		t.Fatal(err)
	}
	tok := json.RawMessage(`{"type":"systemd-recovery","keyslots":["0"]}`)
	id, err := h.AddToken(f, -1, tok)
	if err != nil || id != 0 {
		t.Fatalf("AddToken = %d, %v", id, err)
	}
	out, ok := cryptsetup(t, "token", "export", "--token-id", "0", img)
	if !ok || !strings.Contains(string(out), "systemd-recovery") {
		t.Errorf("cryptsetup token export = %s", out)
	}
	if err := h.KillSlot(f, 0); err != nil {
		t.Fatal(err)
	}
	out, _ = cryptsetup(t, "token", "export", "--token-id", "0", img)
	if strings.Contains(string(out), `"0"`) {
		t.Errorf("token still references killed keyslot: %s", out)
	}
	if err := h.RemoveToken(f, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := cryptsetup(t, "token", "export", "--token-id", "0", img); ok {
		t.Errorf("cryptsetup token export of removed token succeeded")
	}
}

// TestCryptsetupEightKeyslots fills 8 keyslots with cryptsetup (one at a
// high priority) and opens each with our code.
func TestCryptsetupEightKeyslots(t *testing.T) {
	img := newImage(t, 20<<20)
	fast := pbkdfArgs(fastPBKDF["pbkdf2"])
	if _, ok := cryptsetup(t, append(append([]string{"luksFormat", "--type", "luks2", "--key-file", keyFile(t, "k0")}, fast...), img)...); !ok {
		t.Fatal("cryptsetup luksFormat failed")
	}
	for i := 1; i < 8; i++ {
		args := append([]string{"luksAddKey", "--key-file", keyFile(t, "k0"), img, keyFile(t, "k"+strconv.Itoa(i))}, fast...)
		if _, ok := cryptsetup(t, args...); !ok {
			t.Fatalf("cryptsetup luksAddKey #%d failed", i)
		}
	}
	if _, ok := cryptsetup(t, "config", "--priority", "prefer", "--key-slot", "6", img); !ok {
		t.Fatal("cryptsetup config --priority failed")
	}
	want := dumpVolumeKey(t, img, keyFile(t, "k0"))
	f := openFileRW(t, img)
	h, err := ReadHeader(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.KeyslotIDs(); len(got) != 8 || got[7] != 7 {
		t.Errorf("KeyslotIDs() = %v, want 0..7", got)
	}
	if order := h.Meta.priorityOrder(); order[0] != "6" {
		t.Errorf("priorityOrder() = %v, want keyslot 6 first", order)
	}
	for i := 0; i < 8; i++ {
		vk, slot, err := h.Unlock(f, []byte("k"+strconv.Itoa(i)))
		if err != nil || slot != i || !bytes.Equal(vk.Bytes(), want) {
			t.Errorf("Unlock(k%d) = slot %d, %v", i, slot, err)
		}
		vk.Destroy()
	}
}

// TestOursBenchmarkedPBKDF formats with benchmarked (not forced) PBKDF
// costs; cryptsetup accepts the resulting parameters.
func TestOursBenchmarkedPBKDF(t *testing.T) {
	for _, p := range []PBKDF{
		{Type: "argon2id", Memory: 1024, Parallel: 2, IterTime: 50e6},
		{Type: "pbkdf2", Hash: "sha512", IterTime: 50e6},
	} {
		img := newImage(t, 20<<20)
		f := openFileRW(t, img)
		h, err := Format(f, []byte("bench"), FormatOptions{PBKDF: p})
		if err != nil {
			t.Fatalf("Format(%+v) = %v", p, err)
		}
		k := h.Meta.Keyslots["0"].KDF
		t.Logf("%s: time %d iterations %d digest iterations %d", k.Type, k.Time, k.Iterations, h.Meta.Digests["0"].Iterations)
		if _, ok := cryptsetup(t, "open", "--test-passphrase", "--key-file", keyFile(t, "bench"), img); !ok {
			t.Errorf("cryptsetup rejects benchmarked %s keyslot", p.Type)
		}
	}
}
