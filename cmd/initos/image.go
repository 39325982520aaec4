package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"initos/image"
	"initos/internal/progress"
)

func init() {
	register("image", "OCI/docker images as btrfs subvolumes", runImage)
	describe("image pull", "REF|oci:DIR[:TAG]|docker-archive:FILE[:NAME[:TAG]|:@INDEX] --store DIR [--platform OS/ARCH[/VARIANT]]",
		"Installs an image into the store: its layers are unpacked into read-only btrfs subvolumes (only those "+
			"the store does not have yet) and the image becomes a read-only snapshot of the top layer. REF is a "+
			"registry reference (credentials from the docker config); oci:DIR[:TAG] an OCI image layout and "+
			"docker-archive:FILE a `docker save` tarball, in skopeo's syntax. Digests are verified while "+
			"streaming. Interrupted (SIGINT/SIGTERM), it stops at a safe point, leaves the store as it was and "+
			"exits 130/143.")
	describe("image list", "--store DIR [--json]", "Lists the installed images: digest, number of layers, names.")
	describe("image rm", "NAME|DIGEST... --store DIR",
		"Removes image names. A name removes only itself; a digest (or a unique prefix of 12+ hex digits) "+
			"removes the image with all its names. The image's subvolume goes with its last name; its layers "+
			"stay cached until `image gc`.")
	describe("image gc", "--store DIR", "Deletes the layers and image subvolumes no installed image uses, and prints them.")
	describe("image root", "NAME --store DIR [--as ROOT] [--default [--config FILE]]",
		"Makes STORE/roots/ROOT, a writable snapshot of the image (default name from the image, e.g. "+
			"busybox-1.36), and prints its path. With --default it also writes the host-root config "+
			"(initos.conf in the btrfs top level, or --config FILE) so that the next boot uses it.")
}

func runImage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "image", map[string]subcommand{
		"pull":   {"install an image into the store", imagePull},
		"list":   {"list installed images", imageList},
		"rm":     {"remove image names", imageRm},
		"gc":     {"delete unused layers and images", imageGC},
		"root":   {"make a writable root from an image", imageRoot},
		"import": {"make an OCI image from a root filesystem (directory or tar)", imageImport},
	}, args, stdout, stderr)
}

// storeFlag adds the --store flag every image verb takes.
func storeFlag(fs *flag.FlagSet) *string {
	return fs.String("store", "", "image store directory on btrfs (required)")
}

// parseStore parses args with fs (which has the --store flag dir), checks
// the number of positional arguments is within [min, max] and opens the
// existing store (never creating it). It returns the store and the
// positional arguments.
func parseStore(fs *flag.FlagSet, dir *string, args []string, min, max int) (*image.Store, []string, error) {
	pos, err := parseFlags(fs, args, min, max)
	if err != nil {
		return nil, nil, err
	}
	if *dir == "" {
		return nil, nil, usageError(fs, "--store is required")
	}
	s, err := image.OpenExisting(*dir)
	if err != nil {
		return nil, nil, err
	}
	return s, pos, nil
}

// interrupted turns the error of work that main's context canceled on
// SIGINT or SIGTERM into exit status 130 or 143.
func interrupted(ctx context.Context, verb, unchanged string, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	cause := context.Cause(ctx)
	code := 130
	if strings.Contains(cause.Error(), syscall.SIGTERM.String()) {
		code = 143
	}
	return &exitError{code, fmt.Errorf("%s: %v: stopped; %s", verb, cause, unchanged)}
}

// lazyBar makes a progress bar when the total is first known.
type lazyBar struct {
	w       io.Writer
	enabled bool
	desc    string
	bar     *progress.Bar
	made    bool
}

func (l *lazyBar) update(read, total int64) {
	if !l.made {
		l.made = true
		l.bar = progress.New(l.w, l.enabled, total, l.desc, true)
	}
	l.bar.Set(read)
}

func (l *lazyBar) finish() { l.bar.Finish() }

func imagePull(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("image pull", stdout, stderr)
	store := storeFlag(fs)
	platform := fs.String("platform", "", "platform of a multi-platform image, os/arch[/variant] (default: this host)")
	prog := fs.Bool("progress", true, "draw a progress bar on stderr when it is a terminal")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	p, err := image.ParsePlatform(*platform)
	if err != nil {
		return usageError(fs, "--platform: %v", err)
	}
	if *store == "" {
		return usageError(fs, "--store is required")
	}
	s, err := image.Open(*store)
	if err != nil {
		return err
	}
	bar := &lazyBar{w: stderr, enabled: *prog, desc: "pull"}
	s.Progress = bar.update
	im, st, err := s.Pull(ctx, pos[0], p)
	bar.finish()
	if err != nil {
		return interrupted(ctx, "image pull", "the store is as it was", err)
	}
	fmt.Fprintf(stdout, "%s %s\n", im.Digest, strings.Join(im.Names, " "))
	fmt.Fprintf(stdout, "unpacked %d of %d layers: %d files, %d bytes, %d entries\n", st.Layers, len(im.Chain), st.Files, st.Bytes, st.Entries)
	return nil
}

// imageJSON is an installed image in `image list --json`.
type imageJSON struct {
	Digest string   `json:"digest"`
	Names  []string `json:"names"`
	Config string   `json:"config"`
	Chain  []string `json:"chain"`
	Path   string   `json:"path"`
}

func imageList(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("image list", stdout, stderr)
	store := storeFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	s, _, err := parseStore(fs, store, args, 0, 0)
	if err != nil {
		return err
	}
	list, err := s.List()
	if err != nil {
		return err
	}
	if *asJSON {
		out := []imageJSON{}
		for _, im := range list {
			out = append(out, imageJSON{im.Digest, append([]string{}, im.Names...), im.Config, append([]string{}, im.Chain...), im.Path})
		}
		return writeJSON(stdout, out)
	}
	for _, im := range list {
		fmt.Fprintf(stdout, "%s\t%d layers\t%s\n", im.Digest, len(im.Chain), strings.Join(im.Names, " "))
	}
	return nil
}

func imageRm(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("image rm", stdout, stderr)
	store := storeFlag(fs)
	s, pos, err := parseStore(fs, store, args, 1, -1)
	if err != nil {
		return err
	}
	for _, n := range pos {
		if err := s.Remove(n); err != nil {
			return err
		}
	}
	return nil
}

func imageGC(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("image gc", stdout, stderr)
	store := storeFlag(fs)
	s, _, err := parseStore(fs, store, args, 0, 0)
	if err != nil {
		return err
	}
	removed, err := s.GC()
	for _, r := range removed {
		fmt.Fprintln(stdout, "removed", r)
	}
	return err
}

func imageRoot(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("image root", stdout, stderr)
	store := storeFlag(fs)
	as := fs.String("as", "", "name of the root under STORE/roots (default: from the image name)")
	def := fs.Bool("default", false, "make it the host root: write "+image.ConfigName+" on the btrfs top level")
	config := fs.String("config", "", "host-root config file to write with --default (default: TOPLEVEL/"+image.ConfigName+")")
	s, pos, err := parseStore(fs, store, args, 1, 1)
	if err != nil {
		return err
	}
	im, err := s.Get(pos[0])
	if err != nil {
		return err
	}
	root, err := s.Root(pos[0], *as)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, root)
	if !*def {
		return nil
	}
	top, rel, err := image.TopLevel(root)
	if err != nil {
		return err
	}
	path := *config
	if path == "" {
		path = filepath.Join(top, image.ConfigName)
	}
	// Keep what else the config says (per-slot roots, flags, later keys).
	c, err := image.ReadConfigFile(path)
	if errors.Is(err, os.ErrNotExist) {
		c, err = &image.Config{}, nil
	}
	if err != nil {
		return err
	}
	c.Root, c.Image = rel, im.Digest
	if err := image.WriteConfigFile(path, c); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: root=%s\n", path, rel)
	return nil
}
