package bootdisk

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"initos/image"
	"initos/loop"
)

// RootImageName is the name of the test OCI image in its layout.
const RootImageName = "initos-test-root"

// StoreDir is where the roots' image store lives in the btrfs top level.
const StoreDir = "store"

// RootFiles returns the files of the test root image: /sbin/init (init),
// the given extra files, the directories a root has, and /lib as a
// relative symlink to usr/lib (merged /usr, as Debian's): the initrd must
// resolve /lib/modules inside the root.
func RootFiles(init []byte, extra map[string][]byte) map[string][]byte {
	files := map[string][]byte{"sbin/init": init}
	for k, v := range extra {
		files[strings.TrimPrefix(k, "/")] = v
	}
	return files
}

// OCIImage writes an OCI image layout in dir with one image (one layer
// holding files, mode 0755 for sbin/*, 0644 else), named RootImageName.
func OCIImage(dir string, files map[string][]byte) error { return ociImage(dir, files, "amd64") }

// ociImage is OCIImage for an architecture (GOARCH: the config's).
func ociImage(dir string, files map[string][]byte, arch string) error {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	mtime := time.Unix(0, 0)
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "etc", "usr", "usr/lib", "sbin", "mnt"} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime})
	}
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "lib", Linkname: "usr/lib", ModTime: mtime})
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		mode := int64(0o644)
		if strings.HasPrefix(n, "sbin/") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: mode, Size: int64(len(files[n])), ModTime: mtime}); err != nil {
			return err
		}
		tw.Write(files[n])
	}
	if err := tw.Close(); err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb.Bytes())), nil })
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg.OS, cfg.Architecture = "linux", arch
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": RootImageName}))
}

// RootSpec says what a root filesystem holds.
type RootSpec struct {
	Files map[string][]byte // the OCI image's files (RootFiles)
	// Image, when set, is the image to pull instead of one made of Files:
	// an image.Resolve source (oci:DIR[:TAG]), e.g. images/debianhost.
	Image string
	// Conf returns initos.conf for the root at rel (relative to the top
	// level); nil writes "root=REL"; "" writes no initos.conf.
	Conf func(rel string) string
	// Edit changes the top level (mounted at top) before unmounting.
	Edit func(top string) error
	// Arch is the image's architecture (GOARCH), "" for amd64: the made
	// image is labelled with it and pulled for it.
	Arch string
}

// BuildRoot makes a btrfs filesystem over the image files imgs (raid1
// for data and metadata when there are two or more; mixed block groups,
// so 64 MiB suffice), pulls the OCI image into a store in it with package
// image (oci:DIR), makes the root subvolume and writes initos.conf. Needs
// root (loop devices, mount).
func BuildRoot(ctx context.Context, imgs []string, sizeMiB int64, spec RootSpec) error {
	tmp, err := os.MkdirTemp("", "bootdisk-root")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	src := spec.Image
	if src == "" {
		oci := filepath.Join(tmp, "oci")
		if err := ociImage(oci, spec.Files, cmp.Or(spec.Arch, "amd64")); err != nil {
			return fmt.Errorf("OCI image: %w", err)
		}
		src = "oci:" + oci
	}
	var devs []string
	for _, img := range imgs {
		if err := os.WriteFile(img, nil, 0o644); err != nil {
			return err
		}
		if err := os.Truncate(img, sizeMiB<<20); err != nil {
			return err
		}
		l, err := loop.Attach(img, loop.Config{})
		if err != nil {
			return err
		}
		defer func() { l.Detach(); l.Close() }()
		devs = append(devs, l.Path)
	}
	args := []string{"-q", "-f", "-M"}
	if len(devs) > 1 {
		args = append(args, "-d", "raid1", "-m", "raid1")
	}
	if out, err := exec.Command("mkfs.btrfs", append(args, devs...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.btrfs: %w\n%s", err, out)
	}
	top := filepath.Join(tmp, "top")
	os.Mkdir(top, 0o755)
	if out, err := exec.Command("mount", "-t", "btrfs", devs[0], top).CombinedOutput(); err != nil {
		return fmt.Errorf("mount: %w\n%s", err, out)
	}
	err = populate(ctx, top, src, spec)
	if out, uerr := exec.Command("umount", top).CombinedOutput(); uerr != nil && err == nil {
		err = fmt.Errorf("umount: %w\n%s", uerr, out)
	}
	// Forget the devices, so that later filesystems with the same fsid
	// (none: mkfs makes new ones) or the loop numbers' reuse confuse nothing.
	exec.Command("btrfs", append([]string{"device", "scan", "--forget"}, devs...)...).Run()
	return err
}

// populate installs the image and the config in the mounted top level.
func populate(ctx context.Context, top, src string, spec RootSpec) error {
	store, err := image.Open(filepath.Join(top, StoreDir))
	if err != nil {
		return err
	}
	img, _, err := store.Pull(ctx, src, v1.Platform{OS: "linux", Architecture: cmp.Or(spec.Arch, "amd64")})
	if err != nil {
		return fmt.Errorf("pull %s: %w", src, err)
	}
	root, err := store.Root(img.Digest, "host")
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(top, root)
	if err != nil {
		return err
	}
	conf := "root=" + rel + "\n"
	if spec.Conf != nil {
		conf = spec.Conf(rel)
	}
	if conf != "" {
		if err := os.WriteFile(filepath.Join(top, image.ConfigName), []byte(conf), 0o644); err != nil {
			return err
		}
	}
	if spec.Edit != nil {
		if err := spec.Edit(top); err != nil {
			return err
		}
	}
	return exec.Command("sync").Run()
}
