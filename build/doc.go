// Package build makes the boot artifacts of InitOS on the trusted build
// machine: the production initrd (initos-init as /init, the early kernel
// modules resolved with their dependencies from the target kernel's
// module directory, and the signed initrd config at
// /etc/initos/initrd.json), and the facts of a kernel modules image (its
// dm-verity root hash, salt, sizes) that the initrd config must carry.
//
// Everything is reproducible: entries sorted, owner 0:0, one modification
// time (SOURCE_DATE_EPOCH), and the same inputs give the same bytes.
//
// Left out: building the modules image itself (package modimage and
// `initos modules pack`), the UKI (packages uki and pecoff), signing.
package build
