package squashfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"initos/internal/progress"
)

// The data pipeline. Add (the producer, on the caller's goroutine) reads
// file content in blocks and packs file tails into fragment blocks; every
// full block and every full fragment block becomes a job. Jobs go both to
// the workers, which compress them (one encoder each), and, in the same
// order, to the ordered writer, which waits for each job in turn and
// places it in the image. Output positions therefore depend only on the
// job order, never on which worker finished first: the image is the same
// at any GOMAXPROCS. A fixed set of jobs is recycled, which bounds memory
// to jobs x 2 x block size.

type jobKind uint8

const (
	jobBlock jobKind = iota // one full block of a regular file
	jobFrag                 // a fragment block
)

type job struct {
	kind        jobKind
	file        *fileData
	first, last bool // first and last full block of its file
	raw         []byte
	n           int // bytes of raw in use
	out         []byte
	stored      []byte // what goes into the image: out or raw[:n]
	size        uint32 // on-disk size field: length | dataRawBit, 0 = sparse
	digest      [32]byte
	err         error
	done        chan struct{}
}

type pipeline struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	bs     int
	noDup  bool
	bar    *progress.Bar

	free, work, order chan *job
	jobs              []*job
	maxJobs           int
	workers           sync.WaitGroup
	writerDone        chan struct{}

	// Producer state.
	frag   *job
	nfrags uint32
	tails  map[[32]byte][2]uint32 // tail digest -> fragment index, offset

	// Ordered writer state.
	out      *outWriter
	runs     map[[32]byte]uint64 // digest of a file's block run -> start
	chain    hash.Hash
	runStart int64
	frags    []fragEntry
	werr     error

	inBytes, dupBytes int64
}

func newPipeline(ctx context.Context, out *outWriter, o Options) (*pipeline, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	n := 4*o.Workers + 4
	p := &pipeline{
		ctx: ctx, cancel: cancel, bs: o.BlockSize, noDup: o.NoDuplicates, bar: o.Progress,
		free: make(chan *job, n), work: make(chan *job, n), order: make(chan *job, n),
		maxJobs: n, writerDone: make(chan struct{}),
		tails: map[[32]byte][2]uint32{}, out: out, runs: map[[32]byte]uint64{}, chain: sha256.New(),
	}
	for range o.Workers {
		enc, err := newEncoder(o.Compressor, o.Level, o.BlockSize)
		if err != nil {
			cancel(err)
			return nil, err
		}
		p.workers.Add(1)
		go p.compressLoop(enc)
	}
	go p.writeLoop()
	return p, nil
}

// take returns a free job, waiting for the writer to release one when
// all are in flight.
func (p *pipeline) take() (*job, error) {
	select {
	case j := <-p.free:
		return j, nil
	default:
	}
	if len(p.jobs) < p.maxJobs {
		j := &job{raw: make([]byte, p.bs), done: make(chan struct{}, 1)}
		p.jobs = append(p.jobs, j)
		return j, nil
	}
	select {
	case j := <-p.free:
		return j, nil
	case <-p.ctx.Done():
		return nil, context.Cause(p.ctx)
	}
}

// submit queues a filled job; the channels hold every job, so it never
// blocks.
func (p *pipeline) submit(j *job) {
	p.order <- j
	p.work <- j
}

// addFile reads a regular file's content: full blocks become jobs, the
// tail goes into a fragment.
func (p *pipeline) addFile(fd *fileData, r io.Reader, size int64) error {
	if r == nil {
		r = bytes.NewReader(nil)
	}
	r = io.LimitReader(r, size+1)
	var prev *job
	var total int64
	for first := true; ; first = false {
		j, err := p.take()
		if err != nil {
			return err
		}
		n, err := io.ReadFull(r, j.raw)
		total += int64(n)
		p.bar.Add(int64(n))
		if err == nil {
			if prev != nil {
				p.submit(prev)
			}
			j.kind, j.file, j.n, j.first, j.last = jobBlock, fd, n, first, false
			prev = j
			continue
		}
		if err != io.EOF && err != io.ErrUnexpectedEOF {
			p.free <- j
			return fmt.Errorf("read content: %w", err)
		}
		if prev != nil {
			prev.last = true
			p.submit(prev)
		}
		p.inBytes += total
		if total != size {
			p.free <- j
			return fmt.Errorf("content is %s bytes, the entry says %d", sizeWord(total, size), size)
		}
		err = p.addTail(fd, j.raw[:n])
		p.free <- j
		return err
	}
}

func sizeWord(got, want int64) string {
	if got > want {
		return fmt.Sprintf("more than %d", want)
	}
	return fmt.Sprint(got)
}

// addTail packs the last partial block of a file into the current
// fragment block, unless the same tail was packed before.
func (p *pipeline) addTail(fd *fileData, tail []byte) error {
	if len(tail) == 0 {
		return nil
	}
	var d [32]byte
	if !p.noDup {
		d = sha256.Sum256(tail)
		if ref, ok := p.tails[d]; ok {
			fd.frag, fd.fragOff = ref[0], ref[1]
			p.dupBytes += int64(len(tail))
			return nil
		}
	}
	if p.frag != nil && p.frag.n+len(tail) > p.bs {
		p.flushFrag()
	}
	if p.frag == nil {
		j, err := p.take()
		if err != nil {
			return err
		}
		j.kind, j.file, j.n = jobFrag, nil, 0
		p.frag = j
	}
	fd.frag, fd.fragOff = p.nfrags, uint32(p.frag.n)
	p.frag.n += copy(p.frag.raw[p.frag.n:], tail)
	if !p.noDup {
		p.tails[d] = [2]uint32{fd.frag, fd.fragOff}
	}
	return nil
}

// flushFrag queues the current fragment block.
func (p *pipeline) flushFrag() {
	if p.frag == nil {
		return
	}
	p.nfrags++
	p.submit(p.frag)
	p.frag = nil
}

// finish queues the last fragment and waits until everything is written.
func (p *pipeline) finish() error {
	p.flushFrag()
	return p.stop()
}

// stop closes the queues and waits for the goroutines.
func (p *pipeline) stop() error {
	close(p.order)
	<-p.writerDone
	close(p.work)
	p.workers.Wait()
	err := p.werr
	if err == nil {
		err = context.Cause(p.ctx)
	}
	p.cancel(errors.New("squashfs: writer stopped"))
	return err
}

// memory is the bytes held by the job buffers (the pipeline's bound).
func (p *pipeline) memory() int64 {
	var n int64
	for _, j := range p.jobs {
		n += int64(cap(j.raw) + cap(j.out))
	}
	return n
}
