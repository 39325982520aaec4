// Package trial is the part of InitOS's A/B upgrades that runs in the
// initrd (initos-init): the trial record in an EFI variable, the
// anti-rollback check against the TPM, and the hardware watchdog that
// resets a trial boot that hangs. It is small on purpose (efivar, tpm2 and
// x/sys only): package boot imports it, and the initrd binary stays small.
// The host side (staging, bless, rollback, status) is package update.
//
// # The trial record
//
// One EFI variable, InitOSTrial-d1576472-6c95-4951-98c8-a4e37026ab55
// (non-volatile, boot and runtime access), holds JSON describing the last
// upgrade of a slot: the slot, its security version, build id and kernel,
// when it was staged, booted and ended, its state and why it ended:
//
//	staged   `initos upgrade` wrote the slot and set BootNext to it
//	trying   the slot's initrd started the trial (Begin), before switch_root
//	blessed  `initos bless` passed the health gate and made the slot the default
//	failed   the trial ended without a bless (see Step and Reason)
//
// A boot of the other slot that finds a record still staged or trying
// ends it as failed (Begin): the firmware fell back to BootOrder after
// the trial boot reset (watchdog, panic=N, a failed initrd rebooting) or
// refused the UKI. An initrd step that fails on a trial boot records the
// step and error itself (Fail) before rebooting. The variable is written
// only when the state changes, never on an ordinary boot.
//
// # Anti-rollback
//
// CheckRollback compares the UKI's security version (from its signed
// initrd config) with the minimum in the TPM NV index (tpm2.RollbackIndex)
// and refuses, with a message naming both, before any unseal is tried.
// The TPM enforces the same rule on its own when the UKI's signed PCR 11
// policy carries the version (tpm2.SignPCRPolicyEntryRollback); this check
// is there for the clear message and for UKIs signed without it.
//
// # Watchdog
//
// ArmWatchdog opens a hardware watchdog (/dev/watchdog0: i6300esb under
// qemu, iTCO_wdt, sp5100_tco... on hardware), sets its timeout and feeds
// it while the initrd runs. On a trial boot the initrd hands it over
// (Handover: stop feeding, close without the magic character) so it stays
// armed across switch_root: a hang of the initrd, of the root's early boot
// or of the kernel resets the machine unless `initos bless` (or the
// root's init) takes it over in time. On other boots it is disarmed
// (Disarm: the magic close) before switch_root. SetPanicReboot makes a
// kernel panic reboot after a few seconds.
//
// Left out: counting attempts (a trial is tried once: BootNext is
// consumed by the firmware, and the next reset boots BootOrder's slot),
// and reading the kernel's panic log (pstore) into the record.
package trial
