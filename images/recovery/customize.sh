#!/bin/sh
# Runs inside the new recovery root as root: from build.sh (mmdebstrap's
# customize hook, through chroot) and from the Dockerfile. $1: host name.
set -eu
echo "${1:-recovery}" >/etc/hostname
: >/etc/machine-id
# busybox's applets as commands where Debian has none (vi, less, ...)
for applet in $(busybox --list); do
	for dir in /usr/bin /usr/sbin /bin /sbin; do
		[ -e "$dir/$applet" ] && continue 2
	done
	ln -s /bin/busybox "/usr/local/bin/$applet"
done
# The installer is run as /usr/bin/initos (install/usbmode.Installer);
# images/lib.sh adds the binary as /usr/local/bin/initos after this script.
ln -sf ../local/bin/initos /usr/bin/initos
