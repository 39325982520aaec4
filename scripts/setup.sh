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

# images/ (docs/images.md): mmdebstrap builds the roots; buildah is the
# image build benchmark's peer (bench/build_test.go).
$SUDO apt-get install -y -qq --no-install-recommends mmdebstrap buildah >/dev/null

# arm64 VM tests (internal/vmtest Arch "arm64", docs/vmtest.md): qemu's
# aarch64 emulator and AAVMF, and Debian's arm64 kernel (modules
# included; depmod's index made here) and systemd-boot-efi:arm64 (the aa64
# systemd-stub) unpacked, not installed, into one directory per version
# under $ARM64_CACHE with a "current" symlink: a rerun with the same
# versions downloads nothing. The kernel version comes from the archive.
# The flavour is cloud-arm64: qemu's arm64 virt machine offers a TPM only
# as tpm-tis-device, whose driver (CONFIG_TCG_TIS) Debian's generic arm64
# kernel leaves out; the cloud kernel has it (and is a third of the size).
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	$SUDO dpkg --add-architecture arm64
	$SUDO apt-get update -qq
fi
$SUDO apt-get install -y -qq --no-install-recommends qemu-system-arm qemu-efi-aarch64 >/dev/null
ARM64_CACHE=${INITOS_ARM64_CACHE:-/var/cache/initos/arm64}
ARM64_FLAVOUR=${INITOS_ARM64_FLAVOUR:-cloud-arm64}
kpkg=$(apt-cache depends "linux-image-$ARM64_FLAVOUR:arm64" | sed -n 's/^ *Depends: \(linux-image-[^:]*\):arm64$/\1/p' | head -n1)
[ -n "$kpkg" ] || { echo "setup: no linux-image-*-arm64 in the archive (dpkg --add-architecture arm64?)" >&2; exit 1; }
kver=$(apt-cache show --no-all-versions "$kpkg:arm64" | sed -n 's/^Version: //p' | head -n1)
sver=$(apt-cache show --no-all-versions systemd-boot-efi:arm64 | sed -n 's/^Version: //p' | head -n1)
arm64dir="${kpkg}_${kver}+systemd-boot-efi_${sver}"
if [ ! -e "$ARM64_CACHE/$arm64dir/.complete" ]; then
	$SUDO mkdir -p "$ARM64_CACHE"
	dl=$(mktemp -d)
	(cd "$dl" && apt-get download -q "$kpkg:arm64" systemd-boot-efi:arm64 2>/dev/null)
	$SUDO rm -rf "$ARM64_CACHE/$arm64dir.tmp"
	for deb in "$dl"/*.deb; do $SUDO dpkg-deb -x "$deb" "$ARM64_CACHE/$arm64dir.tmp"; done
	rm -rf "$dl"
	$SUDO depmod -b "$ARM64_CACHE/$arm64dir.tmp" "${kpkg#linux-image-}"
	$SUDO touch "$ARM64_CACHE/$arm64dir.tmp/.complete"
	$SUDO mv -T "$ARM64_CACHE/$arm64dir.tmp" "$ARM64_CACHE/$arm64dir"
fi
$SUDO ln -sfn "$arm64dir" "$ARM64_CACHE/current"
for old in "$ARM64_CACHE"/*; do
	case $(basename "$old") in current | "$arm64dir") ;; *) $SUDO rm -rf "$old" ;; esac
done

command -v go >/dev/null || { echo "setup: Go >= 1.26 must be on PATH" >&2; exit 1; }
go mod download
