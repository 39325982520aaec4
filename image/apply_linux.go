package image

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Stats counts what applying layers did.
type Stats struct {
	Layers    int   // layers applied (not taken from the cache)
	Entries   int64 // tar entries read
	Files     int64 // regular files written
	Bytes     int64 // bytes of regular file content written
	Dirs      int64 // directories (created or updated)
	Symlinks  int64 // symbolic links
	Hardlinks int64 // hard links
	Devices   int64 // character and block devices and fifos
	Whiteouts int64 // whiteout and opaque whiteout entries
}

func (s *Stats) add(o Stats) {
	s.Layers += o.Layers
	s.Entries += o.Entries
	s.Files += o.Files
	s.Bytes += o.Bytes
	s.Dirs += o.Dirs
	s.Symlinks += o.Symlinks
	s.Hardlinks += o.Hardlinks
	s.Devices += o.Devices
	s.Whiteouts += o.Whiteouts
}

// budget is what is left of an image's Limits across its layers.
type budget struct {
	lim     Limits
	entries int64
	bytes   int64
	onRead  func(n int) // compressed bytes read (progress), or nil
}

// smallFile is the largest file handed to the worker pool; bigger ones are
// streamed by the reader goroutine itself.
const smallFile = 1 << 20

// maxCachedDirs bounds the open directory descriptors of an applier.
const maxCachedDirs = 1024

// applier applies one layer tar to a directory (the root of a writable
// subvolume) with OCI semantics. The tar is read sequentially by one
// goroutine; regular files up to smallFile are written by a bounded pool
// of workers. Every lookup is relative to the root with RESOLVE_IN_ROOT,
// so no entry can reach outside it.
type applier struct {
	ctx       context.Context
	rootfd    int
	freshRoot bool // the root is a new empty subvolume (first layer)
	times     dirTimes
	budget    *budget
	stats     Stats

	dirs   map[string]int // open O_PATH descriptors of directories, by clean path
	sgid   map[int]bool   // descriptors of dirs with the set-group-ID bit
	dirAnc map[string]int // paths that are, or are an ancestor of, a key of dirs

	created  map[string]struct{} // paths made by this layer (whiteouts spare them)
	dirMeta  []dirEntry          // metadata set after all content
	dirIdx   map[string]int      // index in dirMeta by path
	rootMeta *tar.Header

	mu      sync.Mutex
	pending map[string]struct{} // paths a worker is writing
	err     error               // first worker error

	jobs     chan fileJob
	inflight sync.WaitGroup
	workers  sync.WaitGroup
}

type dirEntry struct {
	path string
	hdr  *tar.Header
}

type fileJob struct {
	dirfd      int
	base, path string
	hdr        *tar.Header
	fast       metaSkip
	data       []byte
	buf        *[]byte // returned to bufPool when done
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func newApplier(ctx context.Context, rootfd int, freshRoot bool, b *budget) *applier {
	a := &applier{
		ctx: ctx, rootfd: rootfd, freshRoot: freshRoot, times: newDirTimes(), budget: b,
		dirs: map[string]int{}, dirAnc: map[string]int{}, sgid: map[int]bool{},
		created: map[string]struct{}{}, pending: map[string]struct{}{}, dirIdx: map[string]int{},
		jobs: make(chan fileJob, 4*b.lim.Workers),
	}
	a.noteSgid(rootfd)
	if !freshRoot {
		a.noteLower("", rootfd)
	}
	for range b.lim.Workers {
		a.workers.Add(1)
		go a.work()
	}
	return a
}

// apply reads the layer tar from r to its end and applies every entry.
func (a *applier) apply(r io.Reader) (err error) {
	defer func() {
		close(a.jobs)
		a.workers.Wait()
		a.closeDirs()
		if err == nil {
			err = a.firstErr()
		}
	}()
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		if n%256 == 0 {
			if err := a.ctx.Err(); err != nil {
				return err
			}
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read layer tar: entry %d: %w", n, err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return err
		}
		if err := a.firstErr(); err != nil {
			return err
		}
	}
	if err := a.barrier(); err != nil {
		return err
	}
	return a.finishDirs()
}

func (a *applier) firstErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// barrier waits until every queued file is written.
func (a *applier) barrier() error {
	a.inflight.Wait()
	return a.firstErr()
}

func (a *applier) isPending(p string) bool {
	a.mu.Lock()
	_, ok := a.pending[p]
	a.mu.Unlock()
	return ok
}

// entry applies one tar entry.
func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	b := a.budget
	if b.entries++; b.entries > b.lim.MaxEntries {
		return fmt.Errorf("apply layer: %w: more than %d entries", ErrLimit, b.lim.MaxEntries)
	}
	a.stats.Entries++
	a.noteEntry(hdr.ModTime)
	p, err := CleanPath(hdr.Name)
	if err != nil {
		return fmt.Errorf("apply layer: entry name: %w", err)
	}
	if len(a.dirs) >= maxCachedDirs {
		if err := a.barrier(); err != nil {
			return err
		}
		a.closeDirs()
	}
	dir, base := splitPath(p)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(dir, base)
	}
	if p == "" {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("apply layer: entry %q: the root must be a directory, not type %q", hdr.Name, hdr.Typeflag)
		}
		a.rootMeta = hdr
		return nil
	}
	// Replacing something a worker is still writing, or a directory this
	// layer has used as a parent: wait for the workers first.
	if a.isPending(p) || (hdr.Typeflag != tar.TypeDir && a.dirAnc[p] > 0) {
		if err := a.barrier(); err != nil {
			return err
		}
		a.closeDirs()
	}
	a.created[p] = struct{}{}
	parent, err := a.dirFD(dir)
	if err != nil {
		return fmt.Errorf("apply layer: entry %q: parent directory: %w", p, err)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse:
		return a.regular(parent, base, p, hdr, r)
	case tar.TypeDir:
		return a.mkdir(parent, base, p, hdr)
	case tar.TypeSymlink:
		return a.symlink(parent, base, p, hdr)
	case tar.TypeLink:
		return a.hardlink(parent, base, p, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return a.mknod(parent, base, p, hdr)
	case tar.TypeXGlobalHeader:
		return nil
	}
	return fmt.Errorf("apply layer: entry %q: unsupported tar type %q", p, hdr.Typeflag)
}

// dirFD returns a descriptor of the clean directory path p, creating
// missing directories (mode 0755) like tar does.
func (a *applier) dirFD(p string) (int, error) {
	if p == "" {
		return a.rootfd, nil
	}
	if fd, ok := a.dirs[p]; ok {
		return fd, nil
	}
	fd, err := openInRoot(a.rootfd, p, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil {
		a.noteLower(p, fd)
	}
	if err == unix.ENOENT {
		dir, base := splitPath(p)
		var pfd int
		if pfd, err = a.dirFD(dir); err != nil {
			return -1, err
		}
		if err = unix.Mkdirat(pfd, base, 0o755); err != nil && err != unix.EEXIST {
			return -1, fmt.Errorf("mkdir %q: %w", p, err)
		}
		a.noteImplicit(p)
		fd, err = openInRoot(a.rootfd, p, unix.O_PATH|unix.O_DIRECTORY)
	}
	if err != nil {
		return -1, fmt.Errorf("open %q: %w", p, err)
	}
	a.dirs[p] = fd
	a.noteSgid(fd)
	for q := p; q != ""; q, _ = splitPath(q) {
		a.dirAnc[q]++
	}
	return fd, nil
}

// noteSgid records whether directory fd has the set-group-ID bit (new
// files then take its group, so chown cannot be skipped).
func (a *applier) noteSgid(fd int) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_ISGID != 0 {
		a.sgid[fd] = true
	}
}

// closeDirs forgets every cached directory descriptor; the caller has
// waited for the workers.
func (a *applier) closeDirs() {
	for _, fd := range a.dirs {
		unix.Close(fd)
	}
	clear(a.dirs)
	clear(a.dirAnc)
	clear(a.sgid)
	a.noteSgid(a.rootfd)
}

// whiteout applies ".wh.NAME" (delete NAME from the lower layers) and
// ".wh..wh..opq" (delete every lower-layer entry of the directory). Entries
// made by this layer itself are kept (image-spec layer.md, Whiteouts).
func (a *applier) whiteout(dir, base string) error {
	a.stats.Whiteouts++
	if err := a.barrier(); err != nil {
		return err
	}
	a.closeDirs()
	name := strings.TrimPrefix(base, whiteoutPrefix)
	opaque := base == opaqueWhiteout
	if !opaque && (name == "" || name == "." || name == "..") {
		return fmt.Errorf("apply layer: whiteout %q: %w: no name to remove", joinPath(dir, base), ErrUnsafePath)
	}
	fd, err := openInRoot(a.rootfd, dir, unix.O_PATH|unix.O_DIRECTORY)
	if err == unix.ENOENT || err == unix.ENOTDIR {
		return nil
	}
	if err != nil {
		return fmt.Errorf("apply layer: whiteout %q: open parent: %w", joinPath(dir, base), err)
	}
	defer unix.Close(fd)
	a.noteLower(dir, fd)
	if opaque {
		keep := func(child string) bool { _, ok := a.created[joinPath(dir, child)]; return ok }
		err = removeChildren(fd, ".", keep)
	} else if _, ok := a.created[joinPath(dir, name)]; !ok {
		err = removeAt(fd, name)
	}
	if err != nil {
		return fmt.Errorf("apply layer: whiteout %q: %w", joinPath(dir, base), err)
	}
	return nil
}

// xattrs returns the SCHILY.xattr.* PAX records of hdr.
func (a *applier) xattrs(hdr *tar.Header, p string) ([][2]string, error) {
	var out [][2]string
	total := 0
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if total += len(name) + len(v); total > a.budget.lim.MaxXattrBytes {
			return nil, fmt.Errorf("apply layer: entry %q: %w: xattrs over %d bytes", p, ErrLimit, a.budget.lim.MaxXattrBytes)
		}
		out = append(out, [2]string{name, v})
	}
	return out, nil
}

// retryExist runs create; if the name exists it removes it and retries.
func retryExist(dirfd int, base string, create func() error) error {
	err := create()
	if isExist(err) {
		if err := removeAt(dirfd, base); err != nil {
			return fmt.Errorf("remove existing: %w", err)
		}
		err = create()
	}
	return err
}
