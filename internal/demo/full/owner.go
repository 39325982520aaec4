package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ownerFile is a file of the owner's layer.
type ownerFile struct {
	name string // in the root, no leading slash
	mode int64
	body []byte
}

// ownerFiles reads what the owner adds to debianhost: root's
// authorized_keys (the owner's SSH key) and the host's SSH host keys
// (made on the build machine: ssh-keygen under TCG takes minutes, and a
// pre-made key is what lets the owner pin it in known_hosts before the
// first boot).
func ownerFiles(dir string) ([]ownerFile, error) {
	pub, err := os.ReadFile(filepath.Join(dir, "id_ed25519.pub"))
	if err != nil {
		return nil, err
	}
	files := []ownerFile{{"root/.ssh/", 0o700, nil}, {"root/.ssh/authorized_keys", 0o600, pub}}
	keys, err := filepath.Glob(filepath.Join(dir, "hostkeys/etc/ssh/ssh_host_*"))
	if err != nil || len(keys) == 0 {
		return nil, fmt.Errorf("no host keys in %s/hostkeys/etc/ssh: %v", dir, err)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b, err := os.ReadFile(k)
		if err != nil {
			return nil, err
		}
		mode := int64(0o600)
		if filepath.Ext(k) == ".pub" {
			mode = 0o644
		}
		files = append(files, ownerFile{"etc/ssh/" + filepath.Base(k), mode, b})
	}
	return files, nil
}

const refName = "org.opencontainers.image.ref.name"

// addOwnerLayer writes into the OCI layout dst an image tagged to: the
// image tagged from in the layout src with one more layer holding files.
func addOwnerLayer(src, from, dst, to string, files []ownerFile) error {
	p, err := layout.FromPath(src)
	if err != nil {
		return err
	}
	base, err := imageByTag(p, from)
	if err != nil {
		return err
	}
	b, err := ownerTar(files)
	if err != nil {
		return err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(base, l)
	if err != nil {
		return err
	}
	out, err := writeLayout(dst)
	if err != nil {
		return err
	}
	return out.ReplaceImage(img, func(desc v1.Descriptor) bool { return desc.Annotations[refName] == to },
		layout.WithAnnotations(map[string]string{refName: to}))
}

// imageByTag finds the image tagged tag in an OCI layout.
func imageByTag(p layout.Path, tag string) (v1.Image, error) {
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if d.Annotations[refName] == tag {
			return p.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("%s: no image tagged %s", p, tag)
}

// ownerTar is the layer: files owned by root, at a fixed time.
func ownerTar(files []ownerFile) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	t := time.Unix(1700000000, 0)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: t, Typeflag: tar.TypeReg, Size: int64(len(f.body)), Format: tar.FormatPAX}
		if f.body == nil {
			h.Typeflag = tar.TypeDir
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
