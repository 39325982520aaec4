// Package install turns blank disks into an InitOS host: two EFI system
// partitions per disk holding the signed UKI and the modules image, one
// LUKS2 volume per disk unlocked by the TPM, btrfs over the volumes (raid1
// with two disks or more), the root image in a subvolume, initos.conf
// naming it for boot slots A and B, and firmware boot entries "InitOS A"
// and "InitOS B". It is the library behind `initos install` and the
// unattended install of the USB installer.
//
// # Steps
//
// Run performs named steps in order (Steps); any failure is a *StepError
// naming the step and, where it applies, the disk:
//
//	preflight    check the UKI (Authenticode), the modules image (verity), the root image, the TPM
//	disks        probe the disks, refuse unsafe ones, print the plan, require consent
//	secureboot   enroll the owner's Secure Boot keys in setup mode (then a reboot is needed)
//	gpt          write the partition table, reread it (BLKRRPART/BLKPG, no udev)
//	esp          FAT32 on each ESP, copy the UKI and the modules image, verify by reading back
//	luks         LUKS2 per disk: recovery key, TPM2 token, install token; one header commit
//	btrfs        open the volumes (dm-crypt), mkfs.btrfs, mount
//	image        pull the root image into a subvolume
//	config       write initos.conf (root=, root.a=, root.b=, image=)
//	finish       hand over the recovery key, mark the volumes complete
//	bootentries  Boot#### "InitOS A"/"InitOS B" and BootOrder
//
// The disk layout is the InitOS contract: per disk, GPT partition 1 "InitOS
// ESP A" and 2 "InitOS ESP B" (EFI System, FAT32, 500 MiB by default) and
// partition 3 "InitOS LUKS" (the Discoverable Partitions LUKS type). Each
// ESP holds EFI/BOOT/BOOTX64.EFI and EFI/Linux/initos.efi (the same signed
// UKI) and initos/modules-<release>.sqfs.
//
// # Power loss
//
// Every step is idempotent and its state is read back from the disks
// themselves, not from a journal: the installer's own storage (a USB stick,
// a tmpfs) may be read-only or lost, and a journal could disagree with the
// disks it describes. A step that finds its work done skips it: a GPT equal
// to the plan, ESP files whose content verifies, Boot#### entries that
// already point at our partitions. The one fact the disks cannot show
// without a key is whether the encrypted volume is complete, so each LUKS2
// header carries an "initos-install" token (state "pending" until the
// root, initos.conf and the recovery key are in place, then "complete"),
// written through luks2's crash-safe double-header update. A rerun finds
// a pending volume, whose key died with the interrupted run, and formats
// it again; nothing of value is lost because nothing was on it. A
// complete install is never formatted again without --wipe.
//
// # Safety
//
// Nothing is written before the plan (disk by-id name, size, model, layout)
// has been printed and consented to (Config.Yes). The disk we booted from
// (LoaderDevicePartUUID) and any disk in use (mounted, swap, held by
// device-mapper, backing a loop device) is never a target; a disk with a
// partition table, a filesystem signature or any non-zero byte in its first
// or last MiB is refused unless Config.Wipe; a disk smaller than the layout
// needs is refused; all of it before the first write.
//
// # Tools
//
// GPT and FAT32 come from github.com/diskfs/go-diskfs; files are written
// whole into clusters allocated at once (its writer rewrites the FAT on
// every allocation). mkfs.btrfs from btrfs-progs is the one C program the
// installer runs. Everything else is InitOS's own Go: luks2, enroll, dm,
// efivar, authenticode, verity, image.
//
// The USB installer image (BuildUSB) holds the installer UKI, this
// config with its payload, and the recovery root; package
// install/usbmode runs the install from it in initos-init's install mode.
//
// Left out: MBR disks as targets, disks with 4096-byte logical sectors
// (planned and formatted with that sector size, but untested), software
// RAID other than btrfs raid1, and resizing an existing install.
package install
