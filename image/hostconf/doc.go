// Package hostconf is the host-root config of InitOS: the file initos.conf
// in the top level (subvolume 5) of the btrfs filesystem on the encrypted
// disk. The initrd (package boot) reads it to choose the root subvolume it
// switches into; `initos image root --default` and the installer write it.
//
// The format is UTF-8 text of "key=value" lines, at most MaxSize bytes;
// blank lines and lines starting with '#' are ignored; keys are
// [a-z][a-z0-9_.-]*, each at most once; values run to the end of the line,
// with no control characters. Keys:
//
//	root=images/roots/host     # the root subvolume, relative to the top level
//	root.a=roots/host-2026.11  # the root of A/B slot A (the ESP "InitOS ESP A" booted)
//	root.b=roots/host-2026.10  # the root of slot B
//	rootflags=compress=zstd    # extra btrfs mount options of the root
//	init=/lib/systemd/systemd  # the root's init (default: the initrd config's, /sbin/init)
//	image=sha256:...           # the image digest the root was made from
//
// root= is required unless both slot roots are given; a slot without its
// own root.X uses root=. Other keys are kept in Extra and written back
// sorted. It lives apart from package image so that the initrd can read
// it without linking image's registry client.
package hostconf
