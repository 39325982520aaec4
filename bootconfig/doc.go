// Package bootconfig is the signed configuration of the InitOS initrd: the
// JSON file /etc/initos/initrd.json that `initos initrd build` puts into
// the initrd cpio, so that the UKI's Authenticode signature (Secure Boot)
// and its PCR 11 measurement (systemd-stub) cover it.
//
// It says what initos-init (package boot) does on this build:
//
//   - mode: "boot" (unlock the disks, switch into the host root) or
//     "install" (the installer and recovery image; the kernel command line
//     initos.mode=install selects it too);
//   - security version (anti-rollback, a uint64) and build id;
//   - the early modules to load from the cpio, in order;
//   - the kernel modules image on the ESP: file name, dm-verity root hash,
//     salt, hash offset and data size, so that nothing of the image is
//     trusted that the signature does not cover;
//   - the unlock policy (TPM2, device wait, optional LUKS UUIDs, whether a
//     volume must carry an InitOS binding to this machine);
//   - defaults for the root (init, rootflags), overridden by the host
//     config initos.conf on the encrypted disk;
//   - the control plane served when unlocking fails (SSH port, authorized
//     keys, user CA keys, network: dhcp, static or none);
//   - the failure timeout and the hardware watchdog.
//
// The format is strict: unknown fields, duplicate keys, trailing data and
// values out of range are errors naming the field. Parse, Validate and
// Marshal round-trip: Marshal(Parse(b)) parses to the same Config. The zero
// value of every optional field means its default (see Config's methods).
//
// Left out: the SSH key formats are checked only for shape (type, base64);
// the control plane parses them fully. Per-host data (disk UUIDs, expected
// PCR values) does not belong here: one signed UKI boots many hosts.
package bootconfig
