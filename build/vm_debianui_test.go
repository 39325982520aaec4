//go:build !vmguest

package build_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"initos/build"
	"initos/images/imagestest"
	"initos/internal/bootdisk"
	"initos/internal/vmtest"
)

// debianuiRootMiB is the size of debianui's btrfs root (1.1 GiB of files):
// TestVMDebianhost's LUKS partition is made for it.
const debianuiRootMiB = 2200

// vncProbe is the debianui root's test unit: before multi-user.target, it
// waits up to five minutes for TigerVNC (127.0.0.1:5901) and noVNC
// (websockify, 127.0.0.1:6080) and prints on the console what they
// answer: the RFB banner, the HTTP status of noVNC's page, and the RFB
// banner again through a WebSocket opened on noVNC's proxy, as a browser
// would (with what follows it: TigerVNC answered one run "RFB 003.003",
// the version it uses to refuse a client, likely its blacklist after the
// probe's dropped connections; either way the bytes came from the VNC
// server through websockify). Both listen on loopback only, so the check
// runs in the guest.
const vncProbe = `#!/bin/bash
# initos-test-vnc (TestVMDebianui): what the VNC server and noVNC answer.
probe() { # PORT REQUEST: the bytes that come back in 3 s, printable
	timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 || exit; [ -z "$2" ] || printf "%b" "$2" >&3; cat <&3' _ "$1" "$2" 2>/dev/null | tr -c '[:print:]\n' .
}
wait_for() { # PORT REQUEST PATTERN NAME
	local got
	while [ "$SECONDS" -lt 300 ]; do
		got=$(probe "$1" "$2" | grep -ao -m1 -E "$3")
		if [ -n "$got" ]; then
			echo "initos-test: $4 answered \"$got\" ${SECONDS}s after the probe started"
			return
		fi
		sleep 1
	done
	echo "initos-test: $4: no answer in 300 s"
}
wait_for 5901 "" 'RFB [0-9]{3}\.[0-9]{3}' "vnc 127.0.0.1:5901"
wait_for 6080 'GET /vnc.html HTTP/1.0\r\n\r\n' 'HTTP/1\.[01] [0-9]{3} [A-Za-z ]*' "novnc 127.0.0.1:6080 /vnc.html"
wait_for 6080 'GET /websockify HTTP/1.1\r\nHost: 127.0.0.1:6080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n' 'RFB [0-9]{3}\.[0-9]{3}[[:print:]]{0,60}' "novnc websocket to the VNC server"
`

const vncProbeUnit = `[Unit]
Description=TestVMDebianui: the VNC server and noVNC answer
After=initos-vnc.service initos-novnc.service
Before=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/initos-test-vnc
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
`

// What the probe must print.
var vncWant = []*regexp.Regexp{
	regexp.MustCompile(`initos-test: vnc 127\.0\.0\.1:5901 answered "RFB 003\.00[0-9]"`),
	regexp.MustCompile(`initos-test: novnc 127\.0\.0\.1:6080 /vnc\.html answered "HTTP/1\.[01] 200 OK"`),
	regexp.MustCompile(`initos-test: novnc websocket to the VNC server answered "RFB 003\.00[0-9]`),
}

// testDebianui is TestVMDebianhost's second boot, on the same machine:
// debianui (debianhost plus TigerVNC, noVNC and Xfce), built by
// `initos build` with the same keys (so the volume's TPM token, sealed
// to the signed PCR 11 policy, PCR 7 and PCR 15, unseals it again), its
// root pulled into btrfs and put into the enrolled LUKS2 volume. It
// boots to multi-user.target with the VNC server and noVNC answering.
//
// It runs only with INITOS_VMTEST_DEBIANUI=1: it adds about 4 minutes on
// a quiet machine (12.5 on the loaded development machine), more than
// CI's budget for it (docs/build.md).
func testDebianui(t *testing.T, m *vmtest.Machine, d *bootdisk.Disk, vol *bootdisk.Volume, sb *bootdisk.SecureBootKey) {
	if os.Getenv("INITOS_VMTEST_DEBIANUI") != "1" {
		t.Skip("set INITOS_VMTEST_DEBIANUI=1 to boot debianui (about 4 more minutes, see docs/build.md)")
	}
	src := imagestest.Build(t, "debianui")
	dir := t.TempDir()
	bm, out := buildForVM(t, src, dir, sb, "console=ttyS0 panic=-1 no_timer_check")
	root := filepath.Join(dir, "root.btrfs")
	edit := func(top string) error {
		if err := provisionRoot(top); err != nil {
			return err
		}
		sys := filepath.Join(top, bootdisk.StoreDir, "roots", "host")
		for _, f := range []struct {
			path, body string
			mode       os.FileMode
		}{
			{"usr/local/sbin/initos-test-vnc", vncProbe, 0o755},
			{"etc/systemd/system/initos-test-vnc.service", vncProbeUnit, 0o644},
		} {
			if err := os.WriteFile(filepath.Join(sys, f.path), []byte(f.body), f.mode); err != nil {
				return err
			}
		}
		return os.Symlink("../initos-test-vnc.service", filepath.Join(sys, "etc/systemd/system/multi-user.target.wants/initos-test-vnc.service"))
	}
	if err := bootdisk.BuildRoot(context.Background(), []string{root}, debianuiRootMiB, bootdisk.RootSpec{Image: src, Edit: edit}); err != nil {
		t.Fatal(err)
	}
	if err := d.Install(3, vol, root); err != nil {
		t.Fatal(err)
	}
	os.Remove(root)
	for _, p := range []string{"EFI/BOOT/BOOTX64.EFI", "EFI/Linux/initos.efi", bm.ModulesImage.ESPPath} {
		b := out[build.UKIFile]
		if p == bm.ModulesImage.ESPPath {
			b = out[bm.ModulesImage.File]
		}
		if err := d.PutFile(1, p, b); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), scaled(12*time.Minute))
	defer cancel()
	w := &watch{want: multiUser, found: cancel}
	var err error
	if w.file, err = os.Create(filepath.Join(dir, "console.log")); err != nil {
		t.Fatal(err)
	}
	defer w.file.Close()
	t.Logf("console of the debianui boot: %s", w.file.Name())
	res, err := m.Boot(ctx, vmtest.BootSpec{Console: w})
	if !w.seen() {
		if res != nil {
			t.Logf("console:\n%s", res.Console)
		}
		t.Fatalf("debianui did not reach multi-user.target: %v", err)
	}
	console := w.buf.Bytes()
	for _, want := range [][]byte{[]byte("modules: " + bm.ModulesImage.ESPPath + " verified by dm-verity"), []byte("the TPM unsealed its key"), []byte("Welcome to ")} {
		if !bytes.Contains(console, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	for _, re := range vncWant {
		if got := re.Find(console); got == nil {
			t.Errorf("console lacks %q", re)
		} else {
			t.Logf("%s", got)
		}
	}
	t.Logf("debianui reached multi-user.target with VNC and noVNC up (boot of %v)", time.Since(w.start).Round(time.Second))
}

// provisionRoot prepares the root in the top level top as a provisioned
// host would be, so that the boot measures the boot chain: its SSH host
// keys, which debianhost makes on its first boot (ssh-keygen -A takes TCG
// many minutes on a shared machine), and serial-getty@ttyS0 masked, since
// the test reads that console: twice here, on the loaded machine,
// systemd's status output stopped for good right after that getty
// started (the guest then idle, multi-user.target never printed). Not
// understood: in the passing run the mask held for debianui but
// debianhost's console still showed the getty start.
func provisionRoot(top string) error {
	root := filepath.Join(top, bootdisk.StoreDir, "roots", "host")
	if err := sshKeygen(root); err != nil {
		return err
	}
	return os.Symlink("/dev/null", filepath.Join(root, "etc/systemd/system/serial-getty@ttyS0.service"))
}

// sshKeygen runs ssh-keygen -A for the root at root.
func sshKeygen(root string) error {
	out, err := exec.Command("ssh-keygen", "-A", "-f", root).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ssh-keygen -A: %w\n%s", err, out)
	}
	return nil
}
