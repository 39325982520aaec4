package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"initos/image"
)

func init() { register("image", "OCI/docker images as btrfs subvolumes", runImage) }

func runImage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "image", map[string]subcommand{
		"pull": {"install an image: REF|oci:DIR|docker-archive:FILE --store DIR [--platform OS/ARCH]", imagePull},
		"list": {"list installed images: --store DIR", imageList},
		"rm":   {"remove image names: NAME... --store DIR", imageRm},
		"gc":   {"delete unused layers: --store DIR", imageGC},
		"root": {"make a writable root from an image: NAME --store DIR [--as NAME] [--default]", imageRoot},
	}, args, stdout, stderr)
}

// storeFlag adds the --store flag every image verb takes.
func storeFlag(fs *flag.FlagSet) *string {
	return fs.String("store", "", "image store directory on btrfs (required)")
}

// parseStore parses args with fs (which has the --store flag dir), checks
// the number of positional arguments is within [min, max] and opens the
// store. It returns the store and the positional arguments.
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

// openStore opens (creating if needed) the --store directory dir.
func openStore(fs *flag.FlagSet, dir string) (*image.Store, error) {
	if dir == "" {
		return nil, usageError(fs, "--store is required")
	}
	return image.Open(dir)
}

func imagePull(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("image pull", stdout, stderr)
	store := storeFlag(fs)
	platform := fs.String("platform", "", "platform of a multi-platform image, os/arch[/variant] (default: this host)")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	p, err := image.ParsePlatform(*platform)
	if err != nil {
		return fmt.Errorf("%w: image pull: --platform: %v", errUsage, err)
	}
	s, err := openStore(fs, *store)
	if err != nil {
		return err
	}
	im, st, err := s.Pull(ctx, pos[0], p)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s\n", im.Digest, strings.Join(im.Names, " "))
	fmt.Fprintf(stdout, "unpacked %d of %d layers: %d files, %d bytes, %d entries\n", st.Layers, len(im.Chain), st.Files, st.Bytes, st.Entries)
	return nil
}

func imageList(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("image list", stdout, stderr)
	store := storeFlag(fs)
	s, _, err := parseStore(fs, store, args, 0, 0)
	if err != nil {
		return err
	}
	list, err := s.List()
	if err != nil {
		return err
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
	if err := image.WriteConfigFile(path, &image.Config{Root: rel, Image: im.Digest}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: root=%s\n", path, rel)
	return nil
}
