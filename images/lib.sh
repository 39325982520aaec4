# images/lib.sh: the build of InitOS's images without a container engine,
# sourced by images/NAME/build.sh. A recipe sets:
#
#   NAME            image name (the OCI tag, the root's host name)
#   VARIANT         mmdebstrap variant (minbase)
#   PACKAGE_FILES   package lists (one a line, # comments, ${ARCH})
#   ROOTFS_DIRS     trees copied over the root, in order (owner root)
#   CUSTOMIZE       scripts run in the root (chroot) with NAME as $1
#   EXTRA_INPUTS    more files whose content is part of the cache key
#   LOCAL_DEBS      .deb files installed last (apt-get install ./x.deb)
#   WITH_INITOS     1: /usr/local/bin/initos (for the target architecture)
#   RECIPE_DIRS     directories under images/ whose files are inputs
#
# then calls img_main "$@". Two stages, each cached under
# $INITOS_IMAGES_CACHE (default ~/.cache/initos-images) by a key of its
# inputs:
#
#   1. base-ARCH-KEY.tar: mmdebstrap's root (KEY: the recipe's files,
#      mmdebstrap's command line (architecture, suite, mirrors, packages),
#      SOURCE_DATE_EPOCH, mmdebstrap's version). Minutes; rebuilt only when the recipe changes.
#   2. oci-ARCH-KEY2/: the base with initos appended (KEY2: KEY, initos's
#      digest, the importing initos's digest, the layer compression), imported by `initos image import`
#      into an OCI image layout tagged NAME. Seconds.
#
# The mirror's content is not part of the key: --refresh rebuilds (a new
# kernel, security updates). With the same packages and SOURCE_DATE_EPOCH
# the output is byte-identical (mmdebstrap and `initos image import` are
# both reproducible).

set -euo pipefail
umask 022

IMAGES=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# DEFAULT_EPOCH is SOURCE_DATE_EPOCH when the environment sets none: a
# constant, so that the same recipe gives the same image on every machine
# and in every checkout (2023-11-14 22:13 UTC; newer file times are
# clamped to it).
DEFAULT_EPOCH=1700000000
REPO=$(dirname "$IMAGES")

log() { echo "images: $NAME: $*" >&2; }
die() {
	log "$*"
	exit 1
}

img_usage() {
	cat <<EOF
usage: images/$NAME/build.sh [--arch ARCH] [--out oci:DIR[:TAG]] [--initos BIN]
                            [--compress gzip|zstd|none] [--refresh] ${EXTRA_USAGE:-}

Builds the $NAME image with mmdebstrap (Debian's mirror, no container engine)
and imports it with \`initos image import\` into an OCI image layout. Prints
the image reference (oci:DIR:TAG) on stdout. Cached by its inputs: a rerun
with the same recipe and initos takes seconds.

  --arch ARCH        Debian architecture (default: this machine's)
  --out oci:DIR[:TAG] also write the image into this layout (tag: $NAME)
  --initos BIN       the initos binary for the image (default: built from
                     this checkout, CGO_ENABLED=0, reproducible flags)
  --compress C       layer compression (default: \$INITOS_IMAGES_COMPRESS or zstd)
  --refresh          rebuild the root even when cached (new mirror content)

Environment: SOURCE_DATE_EPOCH (default $DEFAULT_EPOCH),
INITOS_IMAGES_CACHE, INITOS_IMAGES_MIRROR (default http://deb.debian.org/debian),
INITOS_IMAGES_SECURITY (default http://deb.debian.org/debian-security; "none"
to leave it out), INITOS_IMAGES_SUITE (bookworm), INITOS (an initos binary of
this machine's architecture to run the import with).
EOF
}

img_args() {
	ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
	OUT= INITOS_BIN= REFRESH=
	COMPRESS=${INITOS_IMAGES_COMPRESS:-zstd}
	while [ $# -gt 0 ]; do
		case $1 in
		--arch) ARCH=${2:?--arch needs a value}; shift 2 ;;
		--out) OUT=${2:?--out needs a value}; shift 2 ;;
		--initos) INITOS_BIN=${2:?--initos needs a value}; shift 2 ;;
		--compress) COMPRESS=${2:?--compress needs a value}; shift 2 ;;
		--refresh) REFRESH=1; shift ;;
		-h | --help) img_usage; exit 0 ;;
		*)
			if declare -F img_extra_arg >/dev/null && img_extra_arg "$@"; then
				shift "$EXTRA_SHIFT"
			else
				echo "images/$NAME/build.sh: unknown argument $1" >&2
				img_usage >&2
				exit 2
			fi
			;;
		esac
	done
	case $OUT in "" | oci:?*) ;; *) echo "--out $OUT: want oci:DIR[:TAG]" >&2; exit 2 ;; esac
	case $COMPRESS in gzip | zstd | none) ;; *) echo "--compress $COMPRESS: want gzip, zstd or none" >&2; exit 2 ;; esac
	GOARCH=$(img_goarch "$ARCH")
}

img_goarch() {
	case $1 in
	amd64 | arm64 | riscv64 | s390x) echo "$1" ;;
	ppc64el) echo ppc64le ;;
	i386) echo 386 ;;
	*) echo "unsupported architecture $1 (amd64, arm64, ppc64el, riscv64, s390x, i386)" >&2; exit 2 ;;
	esac
}

img_setup() {
	SUITE=${INITOS_IMAGES_SUITE:-bookworm}
	MIRROR=${INITOS_IMAGES_MIRROR:-http://deb.debian.org/debian}
	SECURITY=${INITOS_IMAGES_SECURITY:-http://deb.debian.org/debian-security}
	COMPONENTS=${COMPONENTS:-main}
	CACHE=${INITOS_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/initos-images}
	SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$DEFAULT_EPOCH}
	export SOURCE_DATE_EPOCH
	mkdir -p "$CACHE/$NAME" "$CACHE/debs/$ARCH"
	WORK=$(mktemp -d "$CACHE/$NAME/.work-XXXXXX")
	trap 'rm -rf "$WORK"' EXIT
}

# img_mirrors prints mmdebstrap's mirror arguments (one a line).
img_mirrors() {
	echo "deb $MIRROR $SUITE $COMPONENTS"
	echo "deb $MIRROR $SUITE-updates $COMPONENTS"
	[ "$SECURITY" = none ] || echo "deb $SECURITY $SUITE-security $COMPONENTS"
}

# img_packages prints the packages of PACKAGE_FILES, comma-separated.
img_packages() {
	local f
	for f in "${PACKAGE_FILES[@]}"; do
		sed -e 's/#.*//' -e "s/\${ARCH}/$ARCH/g" "$f"
	done | tr -s ' \t\n' '\n' | grep -v '^$' | paste -sd, -
}

# img_overlay writes a tar of a ROOTFS_DIRS tree: owner root, no group or
# other write, mtime SOURCE_DATE_EPOCH, sorted, without the "." entry.
img_overlay() {
	local dir=$1 out=$2
	(cd "$dir" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
		tar --null --no-recursion -T - -cf "$out" --owner=0 --group=0 --numeric-owner \
			--mtime="@$SOURCE_DATE_EPOCH" --mode=u+rwX,go+rX,go-w)
}

# img_args_base sets MMDEBSTRAP, the command line that builds the root
# into $WORK/base.tar (the overlay tars it names are written).
img_args_base() {
	local hooks=() i=0 d f mirrors=()
	for d in "${ROOTFS_DIRS[@]}"; do
		i=$((i + 1))
		img_overlay "$d" "$WORK/overlay$i.tar"
		hooks+=(--customize-hook="tar-in $WORK/overlay$i.tar /")
	done
	for f in "${LOCAL_DEBS[@]}"; do
		hooks+=(--customize-hook="upload $f /tmp/initos-local.deb"
			--customize-hook='chroot "$1" apt-get install -y --no-install-recommends /tmp/initos-local.deb'
			--customize-hook='rm -f "$1"/tmp/initos-local.deb')
	done
	for f in "${CUSTOMIZE[@]}"; do
		hooks+=(--customize-hook="upload $f /tmp/initos-customize.sh"
			--customize-hook="chroot \"\$1\" sh /tmp/initos-customize.sh $NAME"
			--customize-hook='rm -f "$1"/tmp/initos-customize.sh')
	done
	mapfile -t mirrors < <(img_mirrors)
	# merged /usr by the hook's symlinks, not the usrmerge package (which
	# pulls in perl); apt's downloads kept in the cache between builds
	MMDEBSTRAP=(mmdebstrap --quiet --variant="$VARIANT" --arch="$ARCH"
		--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
		--aptopt='APT::Install-Recommends "false"'
		--dpkgopt="$IMAGES/common/dpkg.cfg"
		--include="$(img_packages)"
		--setup-hook="mkdir -p \"\$1\"/var/cache/apt/archives"
		--setup-hook="sync-in $CACHE/debs/$ARCH /var/cache/apt/archives"
		--customize-hook="sync-out /var/cache/apt/archives $CACHE/debs/$ARCH"
		"${hooks[@]}"
		--customize-hook='rm -f "$1"/etc/hostname.dpkg-* "$1"/var/lib/systemd/random-seed "$1"/initrd.img "$1"/initrd.img.old'
		"$SUITE" "$WORK/base.tar" "${mirrors[@]}")
}

# img_key prints the cache key of the base root: the mmdebstrap command
# line (paths made relative), every file of the recipe by path and
# content, the epoch and mmdebstrap's version.
img_key() {
	{
		printf '%s\n' "${MMDEBSTRAP[@]}" | sed -e "s|$WORK|WORK|g" -e "s|$CACHE|CACHE|g" -e "s|$IMAGES|IMAGES|g"
		echo "epoch=$SOURCE_DATE_EPOCH $(mmdebstrap --version)"
		(cd "$IMAGES" && find common "${RECIPE_DIRS[@]}" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
		local f
		for f in "${EXTRA_INPUTS[@]}" "${LOCAL_DEBS[@]}"; do sha256sum <"$f"; done
	} | sha256sum | cut -c1-16
}

# img_base builds (or finds) the base root tar: BASE.
img_base() {
	command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (apt-get install mmdebstrap)"
	img_args_base
	BASE_KEY=$(img_key)
	BASE=$CACHE/$NAME/base-$ARCH-$BASE_KEY.tar
	if [ -s "$BASE" ] && [ -z "$REFRESH" ]; then
		log "root cached: $BASE"
		return
	fi
	local start
	log "mmdebstrap $SUITE $ARCH ($VARIANT + $(img_packages | tr , ' '))"
	start=$(date +%s)
	"${MMDEBSTRAP[@]}" >&2
	mv "$WORK/base.tar" "$BASE"
	log "root built in $(($(date +%s) - start)) s: $(du -m "$BASE" | cut -f1) MiB tar"
	img_prune "base-$ARCH-" "$BASE"
}

# img_prune keeps the newest 2 entries NAME/PREFIX* besides KEEP.
img_prune() {
	local prefix=$1 keep=$2 old
	{ ls -1dt "$CACHE/$NAME/$prefix"* 2>/dev/null || true; } | { grep -vxF "$keep" || true; } |
		tail -n +3 | while read -r old; do rm -rf "$old"; done
}

# img_go_build builds initos for GOARCH $1 into $2, reproducibly.
img_go_build() {
	command -v go >/dev/null || die "go is not on PATH (needed to build initos; or pass --initos)"
	(cd "$REPO" && CGO_ENABLED=0 GOOS=linux GOARCH=$1 go build -trimpath -ldflags='-s -w -buildid=' -o "$2" ./cmd/initos)
}

# img_tools sets TARGET_INITOS (for the image) and TOOL (to run here).
img_tools() {
	local host
	host=$(go env GOHOSTARCH 2>/dev/null || img_goarch "$(dpkg --print-architecture)")
	if [ -n "${INITOS:-}" ]; then
		TOOL=$INITOS
	elif [ -n "$INITOS_BIN" ] && [ "$GOARCH" = "$host" ]; then
		TOOL=$INITOS_BIN
	else
		TOOL=$WORK/initos-host
		img_go_build "$host" "$TOOL"
	fi
	if [ "$WITH_INITOS" != 1 ]; then
		TARGET_INITOS=
	elif [ -n "$INITOS_BIN" ]; then
		TARGET_INITOS=$INITOS_BIN
	elif [ "$GOARCH" = "$host" ] && [ "$TOOL" = "$WORK/initos-host" ]; then
		TARGET_INITOS=$TOOL
	else
		TARGET_INITOS=$WORK/initos-$GOARCH
		img_go_build "$GOARCH" "$TARGET_INITOS"
	fi
}

# img_root_tar writes the final root tar to $1: the base, then initos.
img_root_tar() {
	cp --reflink=auto "$BASE" "$1"
	[ -n "$TARGET_INITOS" ] || return 0
	mkdir -p "$WORK/add/usr/local/bin"
	cp "$TARGET_INITOS" "$WORK/add/usr/local/bin/initos"
	tar -C "$WORK/add" -rf "$1" --owner=0 --group=0 --numeric-owner \
		--mtime="@$SOURCE_DATE_EPOCH" --mode=0755 ./usr/local/bin/initos
}

# img_import imports the root tar $1 into the layout $2 with tag $3.
img_import() {
	local platform=linux/$GOARCH
	[ "$GOARCH" != arm64 ] || platform=linux/arm64/v8
	"$TOOL" image import --progress=false --compress "$COMPRESS" --platform "$platform" \
		--tag "$3" "$1" "oci:$2" >&2
}

img_main() {
	local v
	for v in PACKAGE_FILES ROOTFS_DIRS CUSTOMIZE EXTRA_INPUTS LOCAL_DEBS RECIPE_DIRS; do
		[ -v "$v" ] || eval "$v=()"
	done
	VARIANT=${VARIANT:-minbase} WITH_INITOS=${WITH_INITOS:-1}
	img_args "$@"
	img_setup
	exec 9>"$CACHE/$NAME/.lock"
	flock 9
	img_tools
	! declare -F img_before_base >/dev/null || img_before_base
	img_base
	local key2 dir tar="$WORK/root.tar" start
	key2=$({
		echo "$BASE_KEY $COMPRESS"
		[ -z "$TARGET_INITOS" ] || sha256sum <"$TARGET_INITOS"
		sha256sum <"$TOOL" # the importer's version is an input too
	} | sha256sum | cut -c1-16)
	dir=$CACHE/$NAME/oci-$ARCH-$key2
	if [ ! -s "$dir/index.json" ] || [ -n "$REFRESH" ]; then
		start=$(date +%s)
		img_root_tar "$tar"
		rm -rf "$WORK/oci"
		img_import "$tar" "$WORK/oci" "$NAME"
		rm -rf "$dir"
		mv "$WORK/oci" "$dir"
		log "imported in $(($(date +%s) - start)) s: $(du -sm "$dir" | cut -f1) MiB layout"
		img_prune "oci-$ARCH-" "$dir"
	else
		log "image cached: $dir"
	fi
	if [ -n "$OUT" ]; then
		local out=${OUT#oci:} tag=$NAME
		case $out in *:*) tag=${out#*:}; out=${out%%:*} ;; esac
		[ -s "$tar" ] || img_root_tar "$tar"
		img_import "$tar" "$out" "$tag"
		echo "oci:$out:$tag"
	else
		echo "oci:$dir:$NAME"
	fi
}
