// Package vmtest is the InitOS VM test harness (privilege tiers 2 and 3):
// it runs a package's guest tests as root on Debian's kernel under
// qemu-system-x86_64 (TCG, never KVM) and reports each of them as a
// subtest of the host test that started the VM.
//
// # Writing a VM test
//
// Guest tests live in _test.go files with the build constraint
// `//go:build vmguest`; they are compiled only into the guest test binary.
// A host test in the same package (in a file without the tag) boots them:
//
//	func TestVM(t *testing.T) {
//		vmtest.Run(t, vmtest.Config{Modules: []string{"dm-verity"}})
//	}
//
// Convention for which tests run in the guest: by default (Config.Run
// empty) exactly the Test functions declared in the package's vmguest-only
// files; Config.Run (a -test.run regexp) selects others. The host test
// calling Run is always excluded (-test.skip), and Run itself skips with a
// "not in VM:" message when called in the guest, so VMs never nest. Guest
// tests must not skip: a guest skip fails the host test unless its message
// starts with "not in VM:".
//
// # What Run does
//
//  1. Finds the kernel: INITOS_VMTEST_KERNEL, or the newest
//     /boot/vmlinuz-VERSION with a /lib/modules/VERSION (never uname: the
//     host kernel is not the one under test).
//  2. Builds, once per process, the runner (./runner, a static Go /init)
//     and the package's test binary (`CGO_ENABLED=0 go test -c -tags
//     vmguest`).
//  3. Packs a compressed newc initramfs: /init, the test binary, the
//     package's testdata/ (the tests' working directory), Config.Files,
//     depmod's index files and the modules of Config.Modules and
//     Config.ExtraModules with their dependencies, resolved by package kmod,
//     and the plan (package plan) telling the runner what to do.
//  4. Boots a Machine: qemu with the console on ttyS0 (kept in memory and
//     in console.log) and the guest tests' output on ttyS1 (a file), per-test
//     copies of Config.Disks as virtio disks, optionally swtpm and OVMF.
//     Without firmware and TPM it boots the kernel's decompressed ELF
//     vmlinux through its PVH entry point (extracted once, cached): ~2.5 s
//     faster per boot under TCG than the bzImage's own decompressor.
//  5. The runner mounts /proc, /sys, /dev (devtmpfs), /tmp and /run, prints
//     a start marker with its uptime, loads the modules, waits for the
//     disks, runs the test binary with -test.v=test2json and
//     INITOS_VMTEST=1, prints the exit status and restarts, which ends qemu
//     (-no-reboot); a guest that does not end within 20 s of its exit
//     status is killed.
//  6. The host converts the output with `go tool test2json` and replays
//     every guest test (and subtest) with its output and result. It logs
//     the boot time; on failure, the qemu command line and the console tail.
//
// # Machines, firmware, TPM, several boots
//
// Machine is the reusable lower layer: a state directory with the copies
// of the disks, the UEFI variable store (Firmware.Vars copied once) and the
// swtpm state directory, all of which survive from one Machine.Boot to the
// next. Boot starts one swtpm per boot (killed and reaped after it) and one
// qemu, for a direct kernel boot (BootSpec.Kernel) or a firmware boot from
// the disks (BootSpec.Kernel empty, e.g. a signed UKI on an ESP under
// OVMFSecureBoot). New + VM.Run give the same over the test plumbing: each
// VM.Run call is one boot of the same machine; VM.RunBoot lets a test turn
// the harness's kernel, initramfs and command line into another boot (a
// signed UKI on the ESP under Secure Boot) and still get the results.
//
// # Libraries
//
// The initramfs is written by initos/initramfs (zstd newc), modules are
// resolved on the host and loaded in the guest by initos/kmod, test2json
// conversion is `go tool test2json`. u-root's / hugelgupf's vmtest is not
// used: it builds its initramfs with its own busybox tooling, boots through
// its own qemu wrapper and has no notion of a machine whose disks, UEFI
// variables and TPM state persist across boots, which the later InitOS
// issues (install, reboot, unlock) need; what is needed here is ~1000
// lines.
//
// Networking: Config.Net attaches a virtio NIC on qemu's user network
// (DHCP 10.0.2.15, restrict=on) with TCP ports forwarded from 127.0.0.1
// (FreePort picks one), its driver loaded before the tests.
//
// Left out: KVM (hangs on the CI machines), other
// architectures, and 9p/virtiofs sharing (everything is in the initramfs).
package vmtest
