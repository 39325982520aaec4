#!/usr/bin/env bash
# Builds the recovery image (the USB installer's root: minbase + busybox +
# btrfs-progs + initos): see images/lib.sh and docs/images.md.
NAME=recovery
here=$(cd "$(dirname "$0")" && pwd)
RECIPE_DIRS=(recovery)
PACKAGE_FILES=("$here/packages")
CUSTOMIZE=("$here/customize.sh")
source "$here/../lib.sh"
img_main "$@"
