// Package kmod resolves Linux kernel modules and their dependencies from the
// index files depmod(8) writes into a kernel's module directory
// (/lib/modules/VERSION), and loads them with finit_module(2) or
// init_module(2). It replaces modprobe in the InitOS initrd and tells the
// build machine which .ko files an initramfs needs.
//
// # What is read
//
// Open reads the text forms of the depmod indexes (the .bin tries are
// ignored; they hold the same data):
//
//   - modules.dep: "PATH: DEP_PATH...", one line per loadable module. depmod
//     lists the full transitive closure, in an order that loads correctly
//     when reversed. Required.
//   - modules.alias: "alias ALIAS MODULE"; ALIAS may be a shell-style
//     pattern (modaliases such as "pci:v00008086d*"). Optional.
//   - modules.softdep: "softdep MODULE pre: A B post: C". Only "pre:" soft
//     dependencies are honoured; "post:" ones and tokens before any "pre:"
//     or "post:" are ignored, as modprobe does. Optional.
//   - modules.builtin: paths of modules compiled into the kernel. Optional.
//   - modules.builtin.modinfo: NUL-separated "MODULE.KEY=VALUE" records;
//     its "alias" keys resolve aliases of built-in code (e.g. "sha256" on a
//     kernel with sha256_generic built in). Optional.
//
// Configuration in /etc/modprobe.d (aliases, options, blacklists, install
// commands) and modules.symbols are deliberately not read: InitOS loads a
// fixed, known list of modules.
//
// # Name resolution
//
// Module names treat '-' and '_' as the same character (the kernel calls
// "dm-verity" dm_verity). A name is looked up, in modprobe's order, as a
// module in modules.dep, as an exact alias, as a pattern alias (only when
// no exact alias matched; '*' does not match '/'), as an alias of built-in
// code, and as a built-in module. An alias matching several modules yields
// all of them, as alternatives (modprobe tries them all too: "crypto-aes"
// names aesni_intel and padlock_aes, and the latter fails on non-VIA
// CPUs): they are Module.Optional, and LoadAll needs one of them to load.
// Built-in modules are reported with Module.Builtin set
// and are not an error; a name found nowhere is a *NotFoundError
// (errors.Is(err, ErrNotFound)).
//
// Resolve orders modules so that every module comes after its hard
// dependencies and after its "pre:" soft dependencies, and lists each once.
// Unlike modprobe from kmod 30 (Debian bookworm), which honours only the
// first "softdep" line of a module, all lines are merged: btrfs therefore
// also pulls in its sha256 and xxhash64 checksum drivers, which it needs
// to mount file systems using those checksums. Soft dependencies are
// Module.Optional: LoadAll ignores their load errors, and a soft
// dependency that cannot be resolved is skipped, as modprobe does.
//
// # Loading
//
// Load (Linux only) hands a plain .ko to finit_module(2). Compressed
// modules (.ko.xz, .ko.zst, .ko.gz) are first offered to finit_module with
// MODULE_INIT_COMPRESSED_FILE (Linux 6.4+ decompresses in the kernel); if
// the kernel rejects the flag or the format, the module is decompressed in
// memory (github.com/ulikunitz/xz, github.com/klauspost/compress/zstd,
// compress/gzip) and loaded with init_module(2). A module that is already
// loaded (EEXIST) is not an error.
//
// The package was written for InitOS rather than reusing u-root's
// pkg/kmodule: that package finds the module directory with uname(2),
// which is wrong at build time (the host kernel is not the target), and it
// has no notion of built-in modules or modules.builtin.modinfo aliases.
package kmod
