package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"initos/internal/bootdisk"
	"initos/internal/vmtest"
)

// dropbearPeerUKI builds BenchmarkControlRecovery's peer: Debian's
// initramfs-tools (MODULES=most, udev, busybox, klibc's ipconfig) with
// dropbear as dropbear-initramfs sets it up: ip=dhcp through
// configure_networking, dropbear on port 22 with the owner's
// authorized_keys and a forced command taking the passphrase on stdin,
// and cryptsetup opening the volume with it before initramfs-tools mounts
// root=. (The package dropbear-initramfs itself is not installed: it would
// rebuild the host's initrd; this is its recipe, with the same binaries.)
// Each step logs to /dev/kmsg: "initos-peer: dropbear up", "initos-peer:
// key received".
func dropbearPeerUKI(b *testing.B, k vmtest.Kernel, dir, authorizedKey string, sb *bootdisk.SecureBootKey) []byte {
	conf := filepath.Join(dir, "initramfs-tools-dropbear")
	if out, err := exec.Command("cp", "-a", "/etc/initramfs-tools", conf).CombinedOutput(); err != nil {
		b.Fatalf("cp: %v\n%s", err, out)
	}
	hk := filepath.Join(conf, "initos-peer", "dropbear_ecdsa_host_key")
	os.MkdirAll(filepath.Dir(hk), 0o755)
	if out, err := exec.Command("dropbearkey", "-t", "ecdsa", "-s", "256", "-f", hk).CombinedOutput(); err != nil {
		b.Fatalf("dropbearkey: %v\n%s", err, out)
	}
	files := map[string]string{
		"initos-peer/authorized_keys":   authorizedKey + "\n",
		"initos-peer/uuid":              bootUUID,
		"hooks/initos-peer":             dropbearHook,
		"scripts/local-top/initos-peer": dropbearScript,
		"conf.d/initos-peer":            "MODULES=most\n",
		"initos-peer/take-key":          takeKey,
		"initos-peer/passwd":            "root:x:0:0:root:/root:/bin/sh\n",
	}
	rd := mkinitramfs(b, k, conf, files, filepath.Join(dir, "initrd-dropbear.img"))
	cmdline := bootCmdline + " ip=dhcp root=/dev/mapper/cryptroot rootfstype=btrfs rootflags=subvol=store/roots/host rw init=/sbin/init"
	uki, err := bootdisk.UKI(k.Image, rd, cmdline, k.Version, sb)
	if err != nil {
		b.Fatal(err)
	}
	return uki
}

const dropbearHook = `#!/bin/sh
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0 ;; esac
. /usr/share/initramfs-tools/hook-functions
copy_exec /sbin/cryptsetup /sbin
copy_exec /usr/sbin/dropbear /sbin
manual_add_modules dm_crypt xts btrfs virtio_net af_packet
mkdir -p "$DESTDIR/etc/dropbear" "$DESTDIR/root/.ssh"
cp "$CONFDIR/initos-peer/dropbear_ecdsa_host_key" "$DESTDIR/etc/dropbear/"
cp "$CONFDIR/initos-peer/authorized_keys" "$DESTDIR/root/.ssh/authorized_keys"
cp "$CONFDIR/initos-peer/passwd" "$DESTDIR/etc/passwd"
cp "$CONFDIR/initos-peer/take-key" "$DESTDIR/bin/take-key"
cp "$CONFDIR/initos-peer/uuid" "$DESTDIR/etc/root.uuid"
chmod 700 "$DESTDIR/root" "$DESTDIR/root/.ssh"
chmod 600 "$DESTDIR/root/.ssh/authorized_keys"
`

// takeKey is the forced command: status (a status file, as the control
// plane's verb; dropbear-initramfs's forced command would be
// cryptroot-unlock), or the passphrase from stdin, handed over whole
// (rename).
const takeKey = `#!/bin/sh
if [ "$SSH_ORIGINAL_COMMAND" = status ]; then
	cat /run/peer.status
	exit 0
fi
IFS= read -r key && printf %s "$key" > /run/peer.key.tmp && mv /run/peer.key.tmp /run/peer.key && echo "unlock: key taken; the boot continues"
`

const dropbearScript = `#!/bin/sh
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0 ;; esac
. /scripts/functions
uuid=$(cat /etc/root.uuid)
modprobe -q dm_crypt
modprobe -q virtio_net
wait_for_udev 10
configure_networking
printf 'stage: unlock\nfailure: waiting for the passphrase of %s\n' "$uuid" > /run/peer.status
dropbear -s -j -k -p 22 -r /etc/dropbear/dropbear_ecdsa_host_key -P /run/dropbear.pid -c /bin/take-key
echo "<2>initos-peer: dropbear up" > /dev/kmsg
while [ ! -e /run/peer.key ]; do sleep 0.1; done
echo "<2>initos-peer: key received" > /dev/kmsg
i=0
while [ ! -e "/dev/disk/by-uuid/$uuid" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
cryptsetup open --key-file /run/peer.key --allow-discards "/dev/disk/by-uuid/$uuid" cryptroot
rm -f /run/peer.key
kill $(cat /run/dropbear.pid)
`
