#!/bin/sh
# Runs inside the new debianui root after debianhost's customize.sh: the
# desktop user and the VNC units. $1: host name.
set -eu
echo "${1:-debianui}" >/etc/hostname
# the desktop's user: no password (log in as root with SSH keys, or give it
# keys); sudo without a password for development
id dev >/dev/null 2>&1 || useradd --create-home --uid 1000 --shell /bin/bash --groups sudo dev
echo 'dev ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/dev
chmod 0440 /etc/sudoers.d/dev
if [ -x /usr/bin/kasmvncserver ]; then
	systemctl enable initos-kasmvnc.service initos-desktop.service
else
	systemctl enable initos-vnc.service initos-novnc.service initos-desktop.service
fi
