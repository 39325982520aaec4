package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"initos/update"
)

func init() {
	register("publish", "push a signed UKI and its modules image to an OCI registry as one boot artifact", runPublish)
	describe("publish", "--uki U [--modules M] [--root-image REF] [--json] REF",
		"On the build machine: check that the modules image M matches the root hash in U's signed initrd config, "+
			"then push both as one OCI artifact (an image manifest of artifactType "+update.ArtifactType+", the empty "+
			"config, a layer of type "+update.MediaTypeUKI+" and one of type "+update.MediaTypeModules+", each "+
			"annotated with its ESP path) to REF: a registry reference REPO:TAG, or oci:DIR for an OCI image layout. "+
			"The manifest is annotated with the kernel release, security version, build id and modules root hash "+
			"(and org.opencontainers.image.created from SOURCE_DATE_EPOCH when set; without it the same inputs give "+
			"the same digest), and --root-image names a root image to install with it. Prints the digest-pinned "+
			"reference hosts should upgrade from. Credentials come from the docker config. Exit status 3: the modules "+
			"image does not match the UKI.")
}

func runPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("publish", stdout, stderr)
	uki := fs.String("uki", "", "the signed UKI `FILE`")
	mods := fs.String("modules", "", "its modules image `FILE` (squashfs with its verity tree appended)")
	root := fs.String("root-image", "", "a root image `REF` to publish with it")
	insecure := fs.Bool("insecure-registry", false, "reach the registry over plain HTTP")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *uki == "" {
		return usageError(fs, "--uki is required")
	}
	created := ""
	if t, ok, err := sourceDateEpoch(); err != nil {
		return usageError(fs, "%v", err)
	} else if ok {
		created = t.Format(time.RFC3339)
	}
	info, err := update.Publish(ctx, pos[0], update.PublishOptions{UKI: *uki, Modules: *mods, RootImage: *root, Created: created,
		Registry: update.RegistryOptions{Insecure: *insecure}})
	if err != nil {
		return publishError(ctx, err)
	}
	if *asJSON {
		return writeJSON(stdout, info)
	}
	fmt.Fprintf(stdout, "%s\n", info.Pinned)
	fmt.Fprintf(stderr, "published kernel %s, security version %d, build %q (%d bytes) to %s\n", info.Kernel, info.SecurityVersion, info.BuildID, info.Bytes, info.Ref)
	return nil
}

// publishError gives a failed publish its exit code: 128+signal when ctx
// was cancelled, exitRefused when the artifacts themselves were refused.
func publishError(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return &exitError{exitSignal, err}
	case errors.Is(err, update.ErrModules) || errors.Is(err, update.ErrConfig):
		return &exitError{exitRefused, err}
	}
	return err
}
