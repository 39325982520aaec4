#!/usr/bin/env bash
# Builds the debianhost image (Debian for a raw machine booted by InitOS):
# see images/lib.sh and docs/images.md.
NAME=debianhost
here=$(cd "$(dirname "$0")" && pwd)
RECIPE_DIRS=(debianhost)
PACKAGE_FILES=("$here/packages")
ROOTFS_DIRS=("$here/rootfs")
CUSTOMIZE=("$here/customize.sh")
source "$here/../lib.sh"
img_main "$@"
