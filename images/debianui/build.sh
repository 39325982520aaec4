#!/usr/bin/env bash
# Builds the debianui image (debianhost plus a VNC desktop): see
# images/lib.sh and docs/images.md. --kasmvnc-deb FILE installs KasmVNC
# (not packaged by Debian) instead of TigerVNC + noVNC.
NAME=debianui
here=$(cd "$(dirname "$0")" && pwd)
host=$here/../debianhost
RECIPE_DIRS=(debianhost debianui)
PACKAGE_FILES=("$host/packages" "$here/packages")
ROOTFS_DIRS=("$host/rootfs" "$here/rootfs")
CUSTOMIZE=("$host/customize.sh" "$here/customize.sh")
LOCAL_DEBS=()
EXTRA_USAGE="[--kasmvnc-deb FILE]"
img_extra_arg() {
	case $1 in
	--kasmvnc-deb)
		[ -f "${2:-}" ] || { echo "--kasmvnc-deb ${2:-}: no such file" >&2; exit 2; }
		LOCAL_DEBS=("$(cd "$(dirname "$2")" && pwd)/$(basename "$2")")
		EXTRA_SHIFT=2
		;;
	*) return 1 ;;
	esac
}
source "$here/../lib.sh"
# TigerVNC + noVNC unless KasmVNC was given (img_args ran in img_main: decide
# after it, through the hook below)
img_before_base() {
	[ ${#LOCAL_DEBS[@]} -gt 0 ] || PACKAGE_FILES+=("$here/packages-tigervnc")
}
img_main "$@"
