package build

import (
	"context"
	"fmt"
	"path/filepath"

	"initos/update"
)

// Publish pushes the outputs of a build in dir (m's UKI and modules
// image) to ref as the boot artifact hosts upgrade from: the same
// artifact `initos publish` pushes (update.Publish, docs/update.md),
// which checks first that the modules image matches the root hash in
// the UKI's signed config. o.UKI and o.Modules are set from m; ref is a
// registry reference REPO:TAG or oci:DIR.
func Publish(ctx context.Context, dir string, m *Manifest, ref string, o update.PublishOptions) (*update.PublishInfo, error) {
	if m.UKI.File == "" || m.ModulesImage.File == "" {
		return nil, fmt.Errorf("build: publish %s: the manifest names no UKI or no modules image", ref)
	}
	o.UKI = filepath.Join(dir, m.UKI.File)
	o.Modules = filepath.Join(dir, m.ModulesImage.File)
	info, err := update.Publish(ctx, ref, o)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err) // update says "publish: push REF: ..."
	}
	return info, nil
}
