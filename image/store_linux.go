package image

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"initos/btrfsioctl"
	"initos/internal/atomicfile"
)

// ErrNotFound reports an image name or digest not in the store.
var ErrNotFound = errors.New("image not found")

// Store is a directory on a btrfs filesystem holding images as
// subvolumes:
//
//	layers/sha256-<chainid>  read-only: the image's layers up to this one
//	images/sha256-<digest>   read-only snapshot of the top layer, by manifest digest
//	roots/<name>             writable snapshots of images (host or container roots)
//	index.json               names -> manifest digests, and each image's chain
//	*/.tmp-*                 work in progress; removed by the next operation
//	.lock                    flock(2) serializing operations
type Store struct {
	Dir    string
	Limits Limits

	// LayerApplied, if set, is called after each layer is unpacked
	// (not for layers found in the cache).
	LayerApplied func(chainID string, s Stats)

	// Progress, if set, is called as the compressed blobs of the layers
	// to unpack are read: read bytes so far of total (the sum of their
	// sizes in the manifest).
	Progress func(read, total int64)
}

// Image is an installed image.
type Image struct {
	Digest string   // manifest digest, "sha256:..."
	Names  []string // names pointing at it, sorted
	Chain  []string // chain ids of its layers, bottom first
	Config string   // config blob digest
	Path   string   // its read-only subvolume
}

// storeDirs are the store's subdirectories. They, and a store directory
// Open creates, are 0700: images hold set-id binaries and device nodes
// that no other user may reach.
var storeDirs = []string{"layers", "images", "roots"}

// Open returns the store in dir, creating it and its directories as
// needed; dir must be on btrfs.
func Open(dir string) (*Store, error) { return open(dir, true) }

// OpenExisting returns the store in dir and fails, creating nothing, when
// dir does not exist or is not an image store (the verbs that only read
// or remove use it).
func OpenExisting(dir string) (*Store, error) { return open(dir, false) }

func open(dir string, create bool) (*Store, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil, &os.PathError{Op: "open image store", Path: dir, Err: err}
	}
	if st.Type != unix.BTRFS_SUPER_MAGIC {
		return nil, fmt.Errorf("open image store %s: not on btrfs (filesystem type %#x)", dir, st.Type)
	}
	for _, d := range storeDirs {
		if err := privateDir(filepath.Join(dir, d), create); err != nil {
			return nil, fmt.Errorf("open image store %s: %w", dir, err)
		}
	}
	return &Store{Dir: dir}, nil
}

// privateDir makes sure the directory p exists (creating it when create
// is set) with no access for group and others.
func privateDir(p string, create bool) error {
	if create {
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("not an image store (no %s/ directory)", filepath.Base(p))
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("not an image store (%s is not a directory)", filepath.Base(p))
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return os.Chmod(p, fi.Mode().Perm()&0o700)
	}
	return nil
}

func digestName(d string) string { return strings.Replace(d, ":", "-", 1) }

func (s *Store) layerPath(chainID string) string {
	return filepath.Join(s.Dir, "layers", digestName(chainID))
}

func (s *Store) imagePath(digest string) string {
	return filepath.Join(s.Dir, "images", digestName(digest))
}

// lock takes the store's lock and removes what interrupted operations
// left behind. The returned function releases it.
func (s *Store) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.Dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock image store: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "lock image store", Path: f.Name(), Err: err}
	}
	unlock := func() { f.Close() }
	if err := s.cleanTemp(); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// cleanTemp deletes the .tmp-* entries of interrupted operations.
func (s *Store) cleanTemp() error {
	for _, sub := range append([]string{""}, storeDirs...) {
		dir := filepath.Join(s.Dir, sub)
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("clean image store: %w", err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".tmp-") {
				if err := removeSubvolOrDir(filepath.Join(dir, e.Name())); err != nil {
					return fmt.Errorf("clean image store: %w", err)
				}
			}
		}
	}
	return nil
}

func removeSubvolOrDir(p string) error {
	if ok, err := btrfsioctl.IsSubvolume(p); err == nil && ok {
		return btrfsioctl.DeleteRecursive(p)
	}
	return os.RemoveAll(p)
}

// commitRename renames the work subvolume tmp to its final name dst (in
// the same directory) and fsyncs the directory, so the commit survives a
// crash. The subvolume's content was synced before.
func commitRename(tmp, dst string) error {
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(dst))
}

// tempPath returns a fresh work path in the store directory sub: a
// read-only subvolume can only be renamed within its parent directory.
func (s *Store) tempPath(sub string) string {
	var b [8]byte
	rand.Read(b[:])
	return filepath.Join(s.Dir, sub, ".tmp-"+hex.EncodeToString(b[:]))
}

// ChainIDs computes the chain ids of a layer stack from its diffIDs
// (image-spec config.md, "Layer ChainID"): ChainID(L0) = DiffID(L0),
// ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln)).
func ChainIDs(diffIDs []v1.Hash) []string {
	out := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d.String()
			continue
		}
		sum := sha256.Sum256([]byte(out[i-1] + " " + d.String()))
		out[i] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return out
}

// Pull resolves src (see Resolve) for platform and installs it.
func (s *Store) Pull(ctx context.Context, src string, platform v1.Platform) (Image, Stats, error) {
	img, names, err := Resolve(ctx, src, platform)
	if err != nil {
		return Image{}, Stats{}, err
	}
	return s.Install(ctx, img, names...)
}

// Install unpacks img into the store, reusing cached layers, and points
// names at it. Each missing layer is applied to a writable snapshot of the
// layer below in a .tmp-* subvolume, made read-only and renamed into
// layers/ (the rename is the commit point); the image itself is a
// read-only snapshot of its top layer. On any error nothing new is
// visible.
func (s *Store) Install(ctx context.Context, img v1.Image, names ...string) (Image, Stats, error) {
	var stats Stats
	unlock, err := s.lock()
	if err != nil {
		return Image{}, stats, err
	}
	defer unlock()
	digest, err := img.Digest()
	if err != nil {
		return Image{}, stats, fmt.Errorf("install image: manifest digest: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return Image{}, stats, fmt.Errorf("install image %s: config: %w", digest, err)
	}
	cfgDigest, err := img.ConfigName()
	if err != nil {
		return Image{}, stats, fmt.Errorf("install image %s: config digest: %w", digest, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return Image{}, stats, fmt.Errorf("install image %s: layers: %w", digest, err)
	}
	lim := s.Limits.withDefaults()
	diffIDs := cfg.RootFS.DiffIDs
	switch {
	case len(layers) != len(diffIDs):
		return Image{}, stats, fmt.Errorf("install image %s: %d layers but %d diffIDs in the config", digest, len(layers), len(diffIDs))
	case len(layers) > lim.MaxLayers:
		return Image{}, stats, fmt.Errorf("install image %s: %w: %d layers, at most %d", digest, ErrLimit, len(layers), lim.MaxLayers)
	}
	chain := ChainIDs(diffIDs)
	ix, err := readIndex(s.Dir)
	if err != nil {
		return Image{}, stats, err
	}
	if _, err := os.Lstat(s.imagePath(digest.String())); err != nil {
		if stats, err = s.unpack(ctx, layers, diffIDs, chain, lim); err != nil {
			return Image{}, stats, fmt.Errorf("install image %s: %w", digest, err)
		}
		if err := s.commitImage(digest.String(), chain); err != nil {
			return Image{}, stats, fmt.Errorf("install image %s: %w", digest, err)
		}
	}
	ix.Images[digest.String()] = &indexImage{Chain: chain, Config: cfgDigest.String()}
	for _, n := range names {
		ix.Refs[n] = digest.String()
	}
	if err := ix.write(s.Dir); err != nil {
		return Image{}, stats, fmt.Errorf("install image %s: %w", digest, err)
	}
	return s.imageOf(ix, digest.String()), stats, nil
}

// unpack applies the layers missing from the cache.
func (s *Store) unpack(ctx context.Context, layers []v1.Layer, diffIDs []v1.Hash, chain []string, lim Limits) (Stats, error) {
	var stats Stats
	start := len(chain)
	for start > 0 {
		if _, err := os.Lstat(s.layerPath(chain[start-1])); err == nil {
			break
		}
		start--
	}
	b := &budget{lim: lim}
	if s.Progress != nil {
		b.onRead = s.progressFunc(layers[start:])
	}
	for i := start; i < len(layers); i++ {
		// A safe point: nothing of this install is visible yet.
		err := ctx.Err()
		var st Stats
		if err == nil {
			st, err = s.unpackLayer(ctx, layers[i], diffIDs[i], chain, i, b)
		}
		stats.add(st)
		if err != nil {
			// Nothing of a failed install stays: drop the layers it added.
			for j := i - 1; j >= start; j-- {
				btrfsioctl.DeleteRecursive(s.layerPath(chain[j]))
			}
			return stats, err
		}
		stats.Layers++
		if s.LayerApplied != nil {
			s.LayerApplied(chain[i], st)
		}
	}
	return stats, nil
}

// progressFunc returns the budget's onRead callback reporting to
// s.Progress against the total size of layers.
func (s *Store) progressFunc(layers []v1.Layer) func(int) {
	var total, read int64
	for _, l := range layers {
		if n, err := l.Size(); err == nil {
			total += n
		}
	}
	s.Progress(0, total)
	return func(n int) {
		read += int64(n)
		s.Progress(read, total)
	}
}

func (s *Store) unpackLayer(ctx context.Context, l v1.Layer, diffID v1.Hash, chain []string, i int, b *budget) (st Stats, err error) {
	tmp := s.tempPath("layers")
	if i == 0 {
		err = btrfsioctl.Create(tmp)
	} else {
		err = btrfsioctl.Snapshot(s.layerPath(chain[i-1]), tmp, false)
	}
	if err != nil {
		return st, err
	}
	defer func() {
		if err != nil {
			btrfsioctl.DeleteRecursive(tmp)
		}
	}()
	if st, err = applyLayer(ctx, tmp, i == 0, l, diffID, b); err != nil {
		return st, err
	}
	// Make the content durable before the rename makes it visible.
	if err = btrfsioctl.Sync(tmp); err != nil {
		return st, err
	}
	if err = btrfsioctl.SetReadOnly(tmp, true); err != nil {
		return st, err
	}
	if err = commitRename(tmp, s.layerPath(chain[i])); err != nil {
		return st, fmt.Errorf("commit layer %s: %w", chain[i], err)
	}
	return st, nil
}

// commitImage makes images/<digest>, a read-only snapshot of the top
// layer (an empty subvolume for an image without layers).
func (s *Store) commitImage(digest string, chain []string) (err error) {
	tmp := s.tempPath("images")
	if len(chain) == 0 {
		if err = btrfsioctl.Create(tmp); err == nil {
			err = btrfsioctl.SetReadOnly(tmp, true)
		}
	} else {
		err = btrfsioctl.Snapshot(s.layerPath(chain[len(chain)-1]), tmp, true)
	}
	if err == nil {
		err = commitRename(tmp, s.imagePath(digest))
	}
	if err != nil {
		btrfsioctl.DeleteRecursive(tmp)
		return fmt.Errorf("commit image: %w", err)
	}
	return nil
}
