// Package boot is the flow of initos-init, the InitOS initrd: from the
// kernel starting /init in the signed UKI's initrd to exec'ing the host
// root's init, with no shell and no other program.
//
// The flow is a small state machine (Flow) of named steps, each a method
// with its own tests, logged with the time since the kernel started to
// the console and to the kernel log (/dev/kmsg):
//
//  1. mount: /proc, /sys, /dev (devtmpfs), /run (tmpfs).
//  2. config: the kernel command line and the signed initrd config
//     (package bootconfig, /etc/initos/initrd.json in the cpio, covered by
//     the UKI signature); appends the steps of the mode.
//  3. early-modules: the config's early modules from the cpio
//     (/lib/modules/<release>), with dependencies, concurrently.
//  4. efivars: efivarfs.
//  5. measure: "enter-initrd" into PCR 11, as systemd-pcrphase (SHA-256 of
//     the word, no NUL). Signed PCR 11 policies for this phase
//     (`initos uki build --pcr-private-key`) unseal from here on.
//  6. esp: the ESP the firmware booted from (systemd-stub's
//     LoaderDevicePartUUID, else the GPT type and the names "InitOS ESP
//     A/B"), its A/B slot from its name, mounted read-only.
//  7. modules: the modules image on the ESP through dm-verity (root hash,
//     salt, sizes from the signed config), its squashfs mounted; the module
//     index switches to it.
//  8. coldplug: every unbound device's modalias matched in modules.alias,
//     loaded concurrently with dependencies and soft dependencies, until no
//     new device appears; the firmware search path set into the image;
//     devices no module matches are logged. It runs in the background,
//     overlapping unlock and root; the handover and the control plane wait
//     for it.
//
// Boot mode then runs:
//
//  9. unlock: the LUKS2 volumes (GPT type ca7d7ccb-..., one per disk);
//     each one's key unsealed with its systemd-tpm2 token (signed PCR 11 +
//     PCR 7 + PCR 15 all-zero by default, through a salted session), its
//     InitOS binding to this machine checked; then each opened with
//     dm-crypt and, right after, measured into PCR 15 (HMAC of the volume
//     identity keyed with the volume key, as systemd-cryptsetup): no later
//     unseal succeeds in this boot, also not from a substituted root.
//  10. root: every opened volume registered with btrfs (raid1 spans
//     them), the top level mounted, initos.conf read (root, root.a/root.b
//     per slot, rootflags, init; package image/hostconf), the root
//     subvolume mounted on /sysroot, its init checked.
//  11. handover: the modules image bound at /lib/modules/<release> and its
//     firmware at /lib/firmware in the root; /dev, /sys, /run, /proc moved;
//     "leave-initrd" into PCR 11; keys wiped; switch_root (delete the
//     initramfs, MS_MOVE, chroot, exec init).
//
// Install mode (initos.mode=install on the signed command line, or mode
// install in the config) runs the step install instead: the installer
// plugs in through Options.Install.
//
// A failing step stops the flow with a *StepError ("unlock: volume ...:
// PCR 7 mismatch: expected ..., actual ..."); Run logs one line and hands
// the Failure (step, error, expected and actual PCRs, volumes, slot, log)
// to Options.OnFailure, the seam of the control plane, which decides to
// reboot, power off or retry from the failed step. Without one it waits
// for the configured failure timeout and reboots. There is never a shell.
//
// The TPM is behind the TPM interface (the device, or fakes in tests).
//
// Left out: udev (devices are found in sysfs, nodes come from devtmpfs),
// a usermode modprobe for the kernel's requests (the modules a step needs
// are loaded by the step), LUKS2 volumes without a TPM token (remote
// unlock is the control plane's), network (the control plane's), and
// hibernation resume.
package boot
