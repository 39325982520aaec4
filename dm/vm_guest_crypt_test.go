//go:build vmguest

package dm

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func cryptTarget(dev string, key []byte) Crypt {
	return Crypt{Length: 2048, Key: key, Device: dev, NoReadWorkqueue: true, NoWriteWorkqueue: true}
}

func TestGuestCrypt(t *testing.T) {
	backing := filepath.Join(t.TempDir(), "crypt.img")
	if err := os.WriteFile(backing, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	l := attachLoop(t, backing, false)
	key := bytes.Repeat([]byte{0x5a, 0xc3}, 32) // 64 bytes: AES-256-XTS
	_, plain := randomFile(t, "plain", 1<<20)

	node := create(t, "ct", false, cryptTarget(l.Path, key))
	writeDirect(t, node, plain)
	remove(t, "ct")

	raw, err := os.ReadFile(backing)
	if err != nil {
		t.Fatal(err)
	}
	for s := 0; s < len(raw); s += SectorSize {
		if bytes.Equal(raw[s:s+SectorSize], plain[s:s+SectorSize]) || bytes.Equal(raw[s:s+SectorSize], make([]byte, SectorSize)) {
			t.Fatalf("backing sector %d holds plaintext or zeros, want ciphertext", s/SectorSize)
		}
	}

	node = create(t, "ct", false, cryptTarget(l.Path, key))
	if got := readAllDirect(t, node, len(plain)); !bytes.Equal(got, plain) {
		t.Errorf("reopened with the same key: read differs from what was written")
	}
	remove(t, "ct")

	wrong := bytes.Clone(key)
	wrong[0] ^= 1
	node = create(t, "ct", false, cryptTarget(l.Path, wrong))
	if got := readAllDirect(t, node, len(plain)); bytes.Equal(got[:SectorSize], plain[:SectorSize]) {
		t.Errorf("reopened with a wrong key: read the plaintext, want different bytes")
	}
	remove(t, "ct")
}

func readAllDirect(t *testing.T, path string, n int) []byte {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := directBuf(t, n)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return bytes.Clone(buf)
}

// TestGuestCryptKeyring passes the key through the kernel keyring and
// replaces it with target messages while suspended.
func TestGuestCryptKeyring(t *testing.T) {
	// The process keyring is found through the calling thread's
	// credentials: a key added on one OS thread is not always visible to a
	// DM ioctl made from another (seen as "required key not available"), so
	// the whole test stays on one thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	l := zeroLoop(t, 1<<20)
	key := bytes.Repeat([]byte{0x17}, 64)
	const desc = "initos:dm-test"
	if _, err := unix.AddKey("logon", desc, key, unix.KEY_SPEC_PROCESS_KEYRING); err != nil {
		t.Fatalf("add_key: %v", err)
	}
	_, plain := randomFile(t, "plain", 1<<20)
	ct := Crypt{Length: 2048, KeyringKey: &KeyringKey{Size: len(key), Description: desc}, Device: l.Path}
	node := create(t, "ct-keyring", false, ct)
	writeDirect(t, node, plain)

	c, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	table, err := c.Table("ct-keyring")
	if err != nil || len(table) != 1 || !strings.Contains(table[0].Args, ":64:logon:"+desc) {
		t.Errorf("Table(ct-keyring) = %v, %v, want the keyring reference", table, err)
	}
	if err := c.Suspend("ct-keyring"); err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"key wipe", "key set :64:logon:" + desc} {
		if _, err := c.Message("ct-keyring", 0, msg); err != nil {
			t.Fatalf("Message(%q): %v", msg, err)
		}
	}
	if info, err := c.Resume("ct-keyring"); err != nil || info.Suspended {
		t.Fatalf("Resume = %+v, %v, want resumed", info, err)
	}
	if got := readAllDirect(t, node, len(plain)); !bytes.Equal(got, plain) {
		t.Errorf("read after key wipe/set differs from what was written")
	}
}
