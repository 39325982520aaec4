//go:build vmguest

package usbmode

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"initos/luks2"
)

func TestGuestUSBInstall(t *testing.T) {
	esp := "/run/usb"
	os.MkdirAll(esp, 0o755)
	for i := 0; i < 300; i++ { // the kernel scans the stick's partitions after the disk appears
		if _, err := os.Stat("/dev/vda2"); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := unix.Mount("/dev/vda1", esp, "vfat", unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("mount the stick's ESP: %v", err)
	}
	root, err := os.ReadFile("/fx/recovery.roothash")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	// The stick itself is never a target: its ESP is mounted and its
	// recovery image mapped.
	_, err = Run(context.Background(), Env{Disk: "/dev/vda", ESP: esp, RootHash: strings.TrimSpace(string(root)), Console: &out, Args: []string{"/dev/vda"}})
	if err == nil || !strings.Contains(err.Error(), "status 3") || !strings.Contains(out.String(), "refusing disk /dev/vda") {
		t.Errorf("install onto the stick: Run() = %v, want exit status 3 refusing /dev/vda; output:\n%s", err, out.String())
	}
	out.Reset()
	got, err := Run(context.Background(), Env{Disk: "/dev/vda", ESP: esp, RootHash: strings.TrimSpace(string(root)), Console: &out})
	t.Logf("installer output:\n%s", out.String())
	if err != nil || got != PowerOff {
		t.Fatalf("Run() = %v, %v; want PowerOff", got, err)
	}
	f, err := os.Open("/dev/vdb3")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := luks2.ReadHeader(f)
	if err != nil {
		t.Fatalf("the target has no LUKS2 volume: %v", err)
	}
	types := map[string]string{}
	for id, raw := range h.Meta.Tokens {
		var tok struct {
			Type, State string
		}
		json.Unmarshal(raw, &tok)
		types[tok.Type] = tok.State
		_ = id
	}
	if types["initos-install"] != "complete" || !has(types, "systemd-tpm2") || !has(types, "systemd-recovery") {
		t.Errorf("target volume tokens = %v, want a complete install, a TPM token and a recovery key", types)
	}
	if key, err := os.ReadFile(DefaultDir + "/run/initos/recovery-key.txt"); err != nil {
		t.Errorf("recovery key file: %v", err)
	} else if _, _, err := h.Unlock(f, bytes.TrimSpace(key)); err != nil {
		t.Errorf("the recovery key written does not open the volume: %v", err)
	}
	// A rerun (the next boot of the stick) finds the install complete.
	out.Reset()
	if got, err := Run(context.Background(), Env{Disk: "/dev/vda", ESP: esp, RootHash: strings.TrimSpace(string(root)), Console: &out}); err != nil || got != PowerOff {
		t.Errorf("rerun: Run() = %v, %v\n%s", got, err, out.String())
	}
	if !strings.Contains(out.String(), "was already installed") {
		t.Errorf("rerun output:\n%s\nwant the install found complete", out.String())
	}
}

func has(m map[string]string, k string) bool { _, ok := m[k]; return ok }
