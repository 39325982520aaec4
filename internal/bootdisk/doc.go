// Package bootdisk builds, on the host, bootable InitOS disks for VM tests
// (tier 3: OVMF Secure Boot + swtpm + Debian's kernel), so that the boot,
// install and upgrade tests share one way to make them:
//
//   - the binaries: initos-init, and the root's test init (rootinit), which
//     reports what it sees in the booted root and powers off;
//   - the kernel modules image: a subset of the kernel's modules and their
//     dependencies, squashfs (mksquashfs) with the dm-verity tree appended
//     (package verity), its facts read back with build.ModulesImageInfo;
//   - the production initrd (build.BuildInitrd) and a UKI on Debian's
//     systemd-stub (uki.Build) with a signed PCR 11 policy (a test PCR key,
//     phase enter-initrd), signed for Secure Boot with OVMF's "snakeoil" db
//     key, so that OVMFSecureBoot boots it;
//   - ESP images (mkfs.vfat, mtools), and files put into an ESP inside a
//     disk image (mcopy at the partition's offset);
//   - root filesystems: an OCI image built in memory (go-containerregistry)
//     unpacked into a btrfs subvolume by package image on a loop-mounted
//     btrfs (single or raid1 over several image files), with initos.conf;
//   - LUKS2 volumes made on the host: the header by package luks2 (a
//     passphrase keyslot), the data encrypted in Go (aes-xts-plain64,
//     512-byte IV sectors, as dm-crypt), so the host needs no device-mapper;
//   - GPT disks (go-diskfs) with the InitOS layout: "InitOS ESP A", "InitOS
//     ESP B", "InitOS LUKS".
//
// TPM enrollment cannot happen on the host: PCR 7 must be the value of the
// real boot. Tests enroll in a first boot of the same machine, running a
// guest test in a UKI signed by the same db key (Machine keeps the TPM
// state), with enroll.Enroll and enroll.Bind.
//
// Builds are cached per test process. Everything needs root (loop devices,
// btrfs) and the tools of scripts/setup.sh; a missing one skips on a
// developer machine and fails under CI.
package bootdisk
