// Package initrd builds, on the trusted build machine, the production
// initrd of InitOS: initos-init as /init, the early kernel modules
// resolved with their dependencies from the target kernel's module
// directory (with the module index cut down to them), and the signed
// initrd config at /etc/initos/initrd.json (package bootconfig); it reads
// the facts of a kernel modules image (its dm-verity root hash, salt,
// sizes) that the config must carry, and rewrites an initrd's config.
//
// Everything is reproducible: entries sorted, owner 0:0, one modification
// time (SOURCE_DATE_EPOCH), and the same inputs give the same bytes.
//
// Left out: building the modules image itself (package modimage and
// `initos modules pack`), the UKI (packages uki and pecoff), signing, and
// the cpio format (packages initramfs and cpio).
package initrd
