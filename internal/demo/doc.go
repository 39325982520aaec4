// Package demo holds the end-to-end demo of InitOS (`make demo`,
// scripts/demo.sh, docs/demo.md) and its test, which runs the script.
//
// The demo's two programs live below:
//
//   - demoinit: the /init of the demo initrd (static Go, no shell): it
//     enrolls the owner keys in setup mode, and under Secure Boot reads the
//     verity-protected data disk through dm-verity;
//   - vmboot: the host side, booting the demo ESP under OVMF Secure Boot
//     with swtpm through internal/vmtest.Machine and checking the console.
//
// Nothing here is a library: the demo only combines the packages that do
// the work (keys: efivar; data image: verity, dm, kmod; initrd:
// initramfs; UKI: pecoff, authenticode).
package demo
