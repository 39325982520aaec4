// Package modimage builds the modules/firmware image of a kernel: one
// squashfs (package squashfs) holding the kernel's /lib/modules/<release>
// and a firmware tree, followed by its dm-verity hash tree (package
// verity). The build machine writes it to the ESP as
// initos/modules-<release>.sqfs; the UKI's signed initrd configuration
// records its file name, root hash, hash offset and data size, and the
// initrd mounts it through dm-verity to load modules (package kmod) and
// let the kernel find firmware.
//
// # Layout
//
// Inside the image (all files owned by root):
//
//	modules/<release>/   the kernel's module directory as depmod left it
//	                     (kernel/, updates/, modules.dep, modules.alias,
//	                     modules.softdep, modules.builtin, ... and .bin
//	                     indexes); the build and source symlinks are left out
//	firmware/            the firmware tree, symlinks included
//
// Mounted at MountPoint (/lib) these are the standard /lib/modules and
// /lib/firmware paths: modprobe-style lookups and the kernel's firmware
// loader work unchanged. The squashfs is padded to 4 KiB; the verity
// superblock and tree follow at HashOffset = DataSize (veritysetup's
// --hash-offset layout, data and hash in one file).
//
// # Compressed modules
//
// Modules are stored as the kernel ships them (.ko, .ko.xz, .ko.zst),
// with depmod's indexes untouched; package kmod (or the kernel itself,
// from Linux 6.4) decompresses .ko.xz and .ko.zst when it loads them.
// Decompressing them at build time would make a .ko.xz image 18-31%
// larger and rename every module, invalidating depmod's modules.dep.bin;
// docs/squashfs.md gives the measurement.
//
// # Reproducibility
//
// The same kernel and firmware trees and options give the same bytes and
// the same root hash on every machine: squashfs is reproducible (with
// Options.Squashfs.Epoch from SOURCE_DATE_EPOCH), owners are root, and the
// verity salt and UUID are derived from the image unless given.
package modimage
