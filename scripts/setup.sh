#!/usr/bin/env bash
# Installs, on Debian bookworm, everything InitOS builds and tests with:
# the C tools used as oracles in tests (never at run time), qemu + OVMF +
# swtpm for the VM tests, and the Debian kernel the VMs boot.
# Needs root (or sudo) and Go >= 1.26 on PATH.
set -euo pipefail
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
	make ca-certificates git \
	cryptsetup-bin squashfs-tools btrfs-progs e2fsprogs dosfstools mtools fdisk gdisk \
	qemu-system-x86 ovmf swtpm swtpm-tools tpm2-tools systemd libtss2-tcti-swtpm0 \
	linux-image-amd64 systemd-boot-efi sbsigntool osslsigncode shim-signed openssl binutils zstd xz-utils cpio kmod busybox-static \
	initramfs-tools dracut-core openssh-client dropbear-bin \
	skopeo umoci pigz \
	>/dev/null
command -v go >/dev/null || { echo "setup: Go >= 1.26 must be on PATH" >&2; exit 1; }
go mod download
