#!/bin/sh
# Runs inside the new debianhost root as root: from build.sh (mmdebstrap's
# customize hook, through chroot) and from the Dockerfile. $1: host name.
set -eu
echo "${1:-debianhost}" >/etc/hostname
# An image is shared by many hosts: no host keys (initos-ssh-hostkeys
# makes them on the first boot), no machine id (systemd makes it).
rm -f /etc/ssh/ssh_host_*
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id
# resolved owns resolv.conf (its package links it; not in a container)
ln -sf ../run/systemd/resolve/stub-resolv.conf /etc/resolv.conf 2>/dev/null ||
	echo "customize: /etc/resolv.conf is busy (a container build): left as it is" >&2
systemctl enable systemd-networkd.service systemd-resolved.service \
	initos-ssh-hostkeys.service initos-bless.service
# a server: no graphical.target by default
systemctl set-default multi-user.target
# initos-init measures "enter-initrd" and "leave-initrd" into PCR 11
# itself, and the disk key's policy holds only in between: systemd's later
# phase measurements (sysinit, ready) need the TPM libraries this image
# leaves out and add nothing to that policy.
systemctl mask systemd-pcrphase.service systemd-pcrphase-sysinit.service
