#!/usr/bin/env bash
# InitOS end to end (docs/demo.md): what a build machine does with the
# `initos` CLI (owner keys, a dm-verity data image, an initrd holding one
# static Go /init, a signed UKI, an ESP), then a virtual machine with OVMF
# Secure Boot and a TPM boots it: boot 1 enrolls the keys, boot 2 runs with
# Secure Boot enforced and reads the verity disk, boot 3 shows the firmware
# refusing a UKI changed after signing.
#
#   scripts/demo.sh OUTDIR     (OUTDIR holds the initos binary: `make demo`)
#
# Needs what scripts/setup.sh installs; no root. Temporary files live in
# one mktemp directory removed at exit (KEEP=1 keeps it).
set -euo pipefail
# The whole script is one block: bash parses it before running, so editing
# the file during a run cannot change what runs.
{

OUT=${1:?usage: scripts/demo.sh OUTDIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
INITOS=$(cd "$OUT" && pwd)/initos
STUB=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
START=$SECONDS

W=$(mktemp -d "${TMPDIR:-/tmp}/initos-demo.XXXXXX")
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi; }
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }
# show prints a command the way a user would type it ($WORK = the temp dir), then runs it.
show() {
	local line
	line=$(printf ' %q' "$@")
	printf '$%s\n' "${line//$W/\$WORK}"
	"$@"
}
run() { # run initos ARGS...: narrated
	local line
	line=$(printf ' %q' initos "$@")
	printf '$%s\n' "${line//$W/\$WORK}"
	"$INITOS" "$@" 2>&1 | sed "s|$W|\$WORK|g"
	return "${PIPESTATUS[0]}"
}
die() { echo "demo: $*" >&2; exit 1; }

for tool in go qemu-system-x86_64 swtpm mkfs.vfat mmd mcopy tar truncate dd od cmp; do
	command -v "$tool" >/dev/null || die "$tool not found: run scripts/setup.sh first"
done
[ -x "$INITOS" ] || die "$INITOS missing: run make build (make demo does)"
[ -r "$STUB" ] || die "$STUB missing (Debian package systemd-boot-efi)"
KERNEL=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$KERNEL" ] || die "no /boot/vmlinuz-* (Debian package linux-image-amd64)"
KVER=${KERNEL#/boot/vmlinuz-}
[ -d "/lib/modules/$KVER" ] || die "/lib/modules/$KVER missing"

say "1. Owner keys: our own PK, KEK and db (no Microsoft, no vendor)"
run keys create --cn "InitOS demo" "$W/keys"
ls "$W/keys" | tr '\n' ' '; echo

say "2. A data image protected by dm-verity (tar of the copyright files in /usr/share/doc)"
(cd /usr/share/doc && find . -name copyright -type f | LC_ALL=C sort | sed -n 1,300p |
	tar --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$W/data.img" -T -)
truncate -s %1M "$W/data.img" # whole MiB: whole 4 KiB verity blocks
SIZE=$(stat -c %s "$W/data.img")
echo "data.img: $SIZE bytes; the hash tree goes right after the data, at --hash-offset $SIZE"
run verity format --hash-offset "$SIZE" "$W/data.img" "$W/data.img" | tee "$W/format.txt"
ROOTHASH=$(awk '/^Root hash:/ {print $3}' "$W/format.txt")
[ ${#ROOTHASH} = 64 ] || die "no root hash in the verity format output"
run verity verify --hash-offset "$SIZE" "$W/data.img" "$W/data.img" "$ROOTHASH"
echo "intact: exit status 0"

say "3. One flipped byte (in a copy) is detected and located"
cp "$W/data.img" "$W/bad.img"
OFF=$((77 * 4096 + 100))
ORIG=$(dd if="$W/bad.img" bs=1 skip="$OFF" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
printf "\\$(printf %03o $((ORIG ^ 1)))" | dd of="$W/bad.img" bs=1 seek="$OFF" conv=notrunc 2>/dev/null
echo "flipped bit 0 of the byte at offset $OFF (data block 77)"
if run verity verify --hash-offset "$SIZE" "$W/bad.img" "$W/bad.img" "$ROOTHASH"; then
	die "the corrupted copy verified"
fi
echo "corrupt: exit status 1, block named"

say "4. The initrd: one static Go binary as /init, four modules with their dependencies, the keys"
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w -buildid=' -o "$W/demoinit" ./internal/demo/demoinit)
INITRD_ARGS=(--init "$W/demoinit" --kernel-dir "/lib/modules/$KVER"
	--module virtio_pci --module virtio_blk --module dm-verity --module efivarfs
	--file "/keys/db.auth=$W/keys/db.auth" --file "/keys/KEK.auth=$W/keys/KEK.auth"
	--file "/keys/PK.auth=$W/keys/PK.auth")
run initrd build "${INITRD_ARGS[@]}" -o "$W/initrd.img"
"$INITOS" initrd build "${INITRD_ARGS[@]}" -o "$W/initrd-again.img" >/dev/null
cmp -s "$W/initrd.img" "$W/initrd-again.img" || die "initrd build is not reproducible"
echo "built twice: identical bytes (every mtime is SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0})"
run initrd ls "$W/initrd.img" >"$W/ls.txt"
grep -v '^d' "$W/ls.txt" | sed -n 1,8p
echo "... ($(wc -l <"$W/ls.txt") entries)"

say "5. The UKI: systemd-stub + kernel $KVER + initrd + command line (with the root hash), signed with db"
printf 'ID=initos\nNAME="InitOS demo"\nPRETTY_NAME="InitOS demo"\n' >"$W/os-release"
CMDLINE="console=ttyS0 quiet panic=-1 initos.verity=$ROOTHASH initos.hashoffset=$SIZE initos.data=/dev/vdb"
run uki build --stub "$STUB" --linux "$KERNEL" --initrd "$W/initrd.img" --os-release "$W/os-release" \
	--uname "$KVER" --cmdline "$CMDLINE" -o "$W/initos.efi"
run uki sign --key "$W/keys/db.key" --cert "$W/keys/db.crt" "$W/initos.efi"
run uki verify --cert "$W/keys/db.crt" "$W/initos.efi"
run uki inspect "$W/initos.efi"

say "6. A copy with one byte of .cmdline changed after signing (the first digit of the root hash)"
cp "$W/initos.efi" "$W/tampered.efi"
KEY=initos.verity=
AT=$(grep -m 1 -obaF "$KEY" "$W/tampered.efi" | cut -d: -f1)
DIGIT=$((AT + ${#KEY}))
NEW=0; [ "${ROOTHASH:0:1}" = 0 ] && NEW=1
printf '%s' "$NEW" | dd of="$W/tampered.efi" bs=1 seek="$DIGIT" conv=notrunc 2>/dev/null
echo "tampered.efi: byte $DIGIT changed from '${ROOTHASH:0:1}' to '$NEW' (initos.verity=$NEW${ROOTHASH:1:7}...)"
if run uki verify --cert "$W/keys/db.crt" "$W/tampered.efi"; then
	die "the tampered UKI verified"
fi

say "7. The ESP: FAT with the UKI as \\EFI\\BOOT\\BOOTX64.EFI (and one with the tampered UKI)"
show mkfs.vfat -C -n ESP "$W/esp.img" 32768
show mmd -i "$W/esp.img" ::/EFI ::/EFI/BOOT
show mcopy -i "$W/esp.img" "$W/initos.efi" ::/EFI/BOOT/BOOTX64.EFI
cp "$W/esp.img" "$W/esp-tampered.img"
show mcopy -o -i "$W/esp-tampered.img" "$W/tampered.efi" ::/EFI/BOOT/BOOTX64.EFI

say "8. Boot it: OVMF Secure Boot, EMPTY variable store (setup mode), swtpm, ESP + data disk (qemu TCG)"
echo "boot 1 enrolls the keys, boot 2 reads the data through dm-verity, boot 3 after flipping the bit of"
echo "step 3 on the VM's disk, boot 4 with the tampered UKI"
cd "$ROOT"
show go run ./internal/demo/vmboot --esp "$W/esp.img" --data "$W/data.img" \
	--flip "$OFF" --tampered-esp "$W/esp-tampered.img" --state "$W/machine"

say "InitOS demo: OK in $((SECONDS - START)) s"
exit 0
}
