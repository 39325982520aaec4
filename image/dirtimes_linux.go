package image

import (
	"cmp"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Directory times. A layer sets the metadata of the directories it lists
// after all its content, since creating and removing entries changes a
// directory's mtime. A directory the layer does not list keeps what it
// had, as umoci does: a lower-layer directory that gains or loses entries
// gets back its recorded times; a directory made only because a path
// needs it gets the mtime of the entry that needed it; and the root of a
// first layer without a "./" entry gets the newest mtime of the layer.
// Unpacking an image twice therefore gives identical trees.

// dirTimes records what finishDirs needs for directories the layer does
// not list.
type dirTimes struct {
	lower    map[string][2]unix.Timespec // atime, mtime before the layer changed them
	implicit map[string]time.Time        // made for a path, with its entry's mtime
	cur      time.Time                   // mtime of the entry being applied
	newest   time.Time                   // newest mtime of the layer
}

func newDirTimes() dirTimes {
	return dirTimes{lower: map[string][2]unix.Timespec{}, implicit: map[string]time.Time{}}
}

// noteEntry records the mtime of the entry being applied.
func (a *applier) noteEntry(mtime time.Time) {
	a.times.cur = mtime
	if mtime.After(a.times.newest) {
		a.times.newest = mtime
	}
}

// noteLower records the times of the directory p (open as fd) before this
// layer changes its entries, unless this layer made it.
func (a *applier) noteLower(p string, fd int) {
	if _, ok := a.times.lower[p]; ok {
		return
	}
	if _, ok := a.dirIdx[p]; ok {
		return
	}
	if _, ok := a.times.implicit[p]; ok {
		return
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil {
		a.times.lower[p] = [2]unix.Timespec{st.Atim, st.Mtim}
	}
}

// noteImplicit records a directory made for a path with no entry of its own.
func (a *applier) noteImplicit(p string) {
	if _, ok := a.times.implicit[p]; !ok {
		a.times.implicit[p] = a.times.cur
	}
}

// finishDirs sets directory metadata and times last, so that creating
// their entries does not change them.
func (a *applier) finishDirs() error {
	if err := a.finishRoot(); err != nil {
		return err
	}
	var jobs []func() error
	for _, d := range a.dirMeta {
		jobs = append(jobs, func() error {
			return a.finishDir(d.path, func(fd int) error { return a.setMetaFD(fd, d.path, d.hdr, metaSkip{}) })
		})
	}
	for p, t := range a.times.implicit {
		if _, ok := a.dirIdx[p]; !ok {
			jobs = append(jobs, func() error { return a.finishDir(p, setTimes(timespecs(t))) })
		}
	}
	for p, ts := range a.times.lower {
		if _, ok := a.dirIdx[p]; !ok && p != "" {
			jobs = append(jobs, func() error { return a.finishDir(p, setTimes(ts)) })
		}
	}
	return a.runParallel(jobs)
}

// finishRoot sets the root's metadata from its entry, or its times.
func (a *applier) finishRoot() error {
	switch ts, lower := a.times.lower[""]; {
	case a.rootMeta != nil:
		return a.setMetaFD(a.rootfd, "/", a.rootMeta, metaSkip{})
	case a.freshRoot:
		return setTimes(timespecs(a.times.newest))(a.rootfd)
	case lower:
		return setTimes(ts)(a.rootfd)
	}
	return nil
}

func setTimes(ts [2]unix.Timespec) func(fd int) error {
	return func(fd int) error {
		if err := futimens(fd, &ts); err != nil {
			return fmt.Errorf("set times: %w", err)
		}
		return nil
	}
}

// runParallel runs independent jobs on the workers (idle after the
// barrier) and returns the first error.
func (a *applier) runParallel(jobs []func() error) error {
	var wg sync.WaitGroup
	next := make(chan func() error)
	var mu sync.Mutex
	var first error
	for range min(a.budget.lim.Workers, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for job := range next {
				if err := job(); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, job := range jobs {
		next <- job
	}
	close(next)
	wg.Wait()
	return first
}

// finishDir opens the directory p and runs set on it; a directory removed
// or replaced later in the layer is skipped.
func (a *applier) finishDir(p string, set func(fd int) error) error {
	fd, err := openInRoot(a.rootfd, p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err == unix.ENOENT || err == unix.ENOTDIR || err == unix.ELOOP {
		return nil
	}
	if err != nil {
		return fmt.Errorf("apply layer: open directory %q: %w", p, err)
	}
	defer unix.Close(fd)
	if err := set(fd); err != nil {
		return fmt.Errorf("apply layer: directory %q: %w", p, err)
	}
	return nil
}
