// Package image installs OCI and Docker images as btrfs subvolumes, the
// root filesystems of InitOS hosts, containers and VMs.
//
// Sources (Resolve), in skopeo's syntax (containers-transports(5)): a
// registry reference (credentials from the docker config through
// authn.DefaultKeychain), "oci:DIR[:TAG]" (an OCI image layout; TAG is an
// org.opencontainers.image.ref.name) and "docker-archive:FILE[:NAME[:TAG]]"
// or "docker-archive:FILE:@INDEX" (a `docker save` tarball, indexed in one
// pass and read in place). A multi-platform index resolves to the host's
// platform or the one asked for. Fetching, manifests and layouts come from
// go-containerregistry; the docker archive reader and the unpacking are
// our own.
//
// Unpacking (image-spec layer.md, "Applying Changesets" and "Whiteouts")
// applies each layer tar to a writable btrfs snapshot of the layer below:
// regular files, directories, symlinks, hard links, character and block
// devices and fifos, with owner, mode (set-id bits included), mtime and
// extended attributes (PAX SCHILY.xattr.*, security.capability included,
// set after chown, which clears it); ".wh.NAME" deletes NAME and
// ".wh..wh..opq" empties its directory, of lower-layer entries only. Every
// path is resolved under the root with openat2(RESOLVE_IN_ROOT): names with
// ".." or a leading "/" are refused (CleanPath), and a symlink, even in a
// lower layer, can never lead a later entry or a hard link outside the
// root. Entries, file sizes, total bytes, xattr sizes and layers are
// bounded (Limits). While the tar is applied the compressed blob is hashed
// against the layer digest and the uncompressed stream against the diffID
// from the config; a mismatch discards the work. Regular files are written
// by a bounded pool of workers while one goroutine reads the tar; nothing
// is fsynced per file: the filesystem is synced once per layer, before
// the layer is committed. Directories keep their recorded mtimes when a
// later layer changes their entries (as umoci), so two unpacks of an image
// are identical; all-zero 4 KiB blocks become holes, which restores the
// holes of GNU/PAX sparse members (as tar -x) and of long zero runs.
//
// Store layout and atomicity (Store): STORE/layers/sha256-<chainid> are
// read-only subvolumes, one per layer stack (chain id, image-spec
// config.md), so a new image version unpacks only the layers it does not
// share; STORE/images/sha256-<manifest digest> is a read-only snapshot of
// the top layer; STORE/roots/<name> are writable snapshots (Root);
// STORE/index.json maps names to digests. Work happens in a .tmp-*
// subvolume beside its destination and a rename commits it (a read-only
// subvolume can be renamed only within its parent directory); a failed
// install removes what it made, and leftovers of an interrupted one are
// removed by the next operation, under flock(STORE/.lock). The store's
// directories are 0700; index.json and initos.conf are written with
// internal/atomicfile. A canceled context stops an install between layers
// or within a file, leaving the store as it was.
//
// Import makes a reproducible one-layer OCI image (a layout on disk) from
// a root filesystem, a directory or a tar such as mmdebstrap's: sorted,
// numeric owners, whole-second mtimes clamped to SOURCE_DATE_EPOCH,
// streamed through parallel gzip (klauspost/pgzip) or zstd whose output
// depends on the bytes only.
//
// The host-root config (Config, ParseConfig, WriteConfigFile) is the file
// initos.conf in the top level (subvolume 5) of the btrfs filesystem,
// lines of key=value; root= names the root subvolume relative to the top
// level. The initrd mounts subvolid=5, reads it and mounts subvol=ROOT.
//
// Left out: image signing/verification policies (see the signed UKI and
// dm-verity parts of InitOS), pushing, building images from Dockerfiles,
// multi-layer imports, compressed docker archives (decompress them first),
// user-namespace id shifting, and running containers.
package image
