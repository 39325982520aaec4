package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"initos/build"
	"initos/update"
)

// builtAndPublished is `initos build --publish --json`'s output: the
// manifest, and what was pushed.
type builtAndPublished struct {
	*build.Manifest
	Published *update.PublishInfo `json:"published"`
}

// publishBuild pushes the build's outputs to f.publish (build.Publish)
// and prints the manifest and the pinned reference.
func publishBuild(ctx context.Context, f *buildFlags, m *build.Manifest, stdout io.Writer) error {
	o := update.PublishOptions{Registry: update.RegistryOptions{Insecure: f.insecure}}
	if t, ok, err := sourceDateEpoch(); err != nil {
		return err
	} else if ok {
		o.Created = t.Format(time.RFC3339)
	}
	info, err := build.Publish(ctx, f.out, m, f.publish, o)
	if err != nil {
		return publishError(ctx, err)
	}
	if f.asJSON {
		return writeJSON(stdout, builtAndPublished{m, info})
	}
	printBuildManifest(stdout, f.out, m)
	fmt.Fprintf(stdout, "Published:       \t%s (%d bytes)\n", info.Pinned, info.Bytes)
	return nil
}
