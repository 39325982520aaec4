// Package build turns a host image (an OCI image holding a kernel, its
// modules and firmware) into the signed boot artifacts of an InitOS
// machine, as `initos build` does (docs/build.md):
//
//   - modules-<release>.sqfs: the kernel's module directory and the
//     firmware in a squashfs with its dm-verity tree appended (package
//     modimage on package squashfs);
//   - initos.efi: a UKI on systemd-stub with the image's kernel, the
//     production initrd (package initrd: initos-init, the early modules
//     taken back out of the finished modules image, the initrd config
//     naming the modules image's root hash), a signed PCR 11 policy for
//     phase enter-initrd (package uki) and an Authenticode signature by
//     the db key (package authenticode);
//   - manifest.json (Manifest): what was built, from what, how.
//
// The image is resolved by package image (REF, oci:DIR[:TAG],
// docker-archive:FILE) and its layers are read once, in order, from their
// blobs: each blob is hashed against its digest while it is read,
// decompressed (gzip, zstd or none, sniffed) and its tar entries routed
// into the squashfs writer (squashfs.TarEntry) or kept in memory (kernel
// images, os-release); nothing is extracted to disk. OCI whiteouts and
// opaque directories apply across layers.
//
// Outputs are written to temporary files in the output directory and
// renamed into place once all are complete, the manifest last. The same
// inputs and Epoch give the same bytes at any number of workers.
//
// The modules image's layout is what initos-init reads (package boot):
// lib/modules/<release> and lib/firmware at its root (package modimage).
//
// Left out: --publish (pushing the outputs to a registry), images whose
// kernel is not an EFI (PE) image, device trees (.dtb) and splash images.
// arm64 images are handled (the aa64 stub, arm64 early modules) but no
// test builds one yet.
package build
