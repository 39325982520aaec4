#!/usr/bin/env bash
# `make size`: the compressed size of the production initrd and what makes
# it up: initos-init (static, amd64 and arm64), the early modules of the
# newest installed kernel (KERNEL_DIR to choose), and the biggest Go
# packages linked into initos-init (symbol sizes of an unstripped build).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out}
mkdir -p "$out"
kdir=${KERNEL_DIR:-$(ls -d /lib/modules/*/ 2>/dev/null | sort -V | tail -1)}
kdir=${kdir%/}
flags=(-trimpath -ldflags='-s -w -buildid=')
for arch in amd64 arm64; do
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build "${flags[@]}" -o "$out/initos-init-$arch" ./cmd/initos-init
	printf 'initos-init %-5s %9d bytes, %9d zstd -19\n' "$arch" "$(stat -c %s "$out/initos-init-$arch")" "$(zstd -19 -q -c "$out/initos-init-$arch" | wc -c)"
done
CGO_ENABLED=0 go build "${flags[@]}" -o "$out/initos" ./cmd/initos
if [ -n "$kdir" ] && [ -f "$kdir/modules.dep" ]; then
	"$out/initos" initrd build --init "$out/initos-init-amd64" --kernel-dir "$kdir" -o "$out/initrd.img" | sed -n 1,2p
	"$out/initos" initrd build --init "$out/initos-init-amd64" --no-modules -o "$out/initrd-nomodules.img" >/dev/null
	all=$(stat -c %s "$out/initrd.img") bare=$(stat -c %s "$out/initrd-nomodules.img")
	awk -v a="$all" -v b="$bare" 'BEGIN { printf "initrd (zstd): %d bytes = %.2f MiB; without modules %d bytes; the modules %d bytes\n", a, a / 1048576, b, a - b }'
else
	echo "no kernel module directory (set KERNEL_DIR): initrd size not measured"
fi
CGO_ENABLED=0 go build -trimpath -o "$out/initos-init-syms" ./cmd/initos-init
echo "biggest packages in initos-init (symbol bytes, uncompressed):"
go tool nm -size -type "$out/initos-init-syms" | awk '$3 ~ /^[TtRr]$/ {
	name = $4; sub(/\(.*$/, "", name); n = split(name, p, ".");
	pkg = p[1]; for (i = 2; i < n; i++) { if (p[i] ~ /^[a-z0-9_\/-]+$/) pkg = pkg "." p[i]; else break }
	sub(/\.[^\/]*$/, "", pkg); size[pkg] += $2 } END { for (k in size) printf "%10d  %s\n", size[k], k }' | sort -rn | sed -n 1,20p
rm -f "$out/initos-init-syms"
