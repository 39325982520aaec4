package squashfs

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
)

// compressLoop is one worker: it compresses jobs with its own encoder and
// marks them done.
func (p *pipeline) compressLoop(enc encoder) {
	defer p.workers.Done()
	zero := make([]byte, p.bs)
	for j := range p.work {
		if p.ctx.Err() == nil {
			j.err = p.compress(enc, j, zero)
		}
		j.done <- struct{}{}
	}
}

// compress fills j.stored and j.size: an all-zero file block becomes a
// hole (size 0, nothing stored); a block that does not shrink is stored
// raw. File blocks get the digest used to find duplicate runs.
func (p *pipeline) compress(enc encoder, j *job, zero []byte) error {
	data := j.raw[:j.n]
	if j.kind == jobBlock && bytes.Equal(data, zero) {
		j.stored, j.size, j.digest = nil, 0, [32]byte{}
		return nil
	}
	out, err := enc.compress(j.out[:0], data)
	if err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	j.out = out
	if len(out) < len(data) {
		j.stored, j.size = out, uint32(len(out))
	} else {
		j.stored, j.size = data, uint32(len(data))|dataRawBit
	}
	if j.kind == jobBlock && !p.noDup {
		j.digest = sha256.Sum256(j.stored)
	}
	return nil
}

// writeLoop is the ordered writer: it takes jobs in queue order, waits
// for their compression and places them in the image.
func (p *pipeline) writeLoop() {
	defer close(p.writerDone)
	for j := range p.order {
		select {
		case <-j.done:
		case <-p.ctx.Done():
			return
		}
		err := j.err
		if err == nil {
			err = p.place(j)
		}
		if err != nil {
			p.werr = err
			p.cancel(err)
			return
		}
		p.free <- j
	}
}

// place writes one compressed job at the current position. When the last
// block of a file completes a run of blocks seen before, the run is
// dropped again (the output position rewinds to its start) and the file
// points at the earlier copy.
func (p *pipeline) place(j *job) error {
	if j.kind == jobFrag {
		p.frags = append(p.frags, fragEntry{Start: uint64(p.out.pos()), Size: j.size})
		return p.out.write(j.stored)
	}
	fd := j.file
	if j.first {
		p.runStart = p.out.pos()
		fd.start = uint64(p.runStart)
		p.chain.Reset()
	}
	fd.blocks = append(fd.blocks, j.size)
	if j.size == 0 {
		fd.sparse += int64(p.bs)
	} else if err := p.out.write(j.stored); err != nil {
		return err
	}
	if p.noDup {
		return nil
	}
	var sz [4]byte
	le.PutUint32(sz[:], j.size)
	p.chain.Write(sz[:])
	p.chain.Write(j.digest[:])
	if !j.last {
		return nil
	}
	var key [32]byte
	p.chain.Sum(key[:0])
	if start, ok := p.runs[key]; ok {
		p.dupBytes += int64(len(fd.blocks)) * int64(p.bs)
		p.out.rewind(p.runStart)
		fd.start = start
		return nil
	}
	p.runs[key] = fd.start
	return nil
}

// outWriter writes the image sequentially through a buffer, at positions
// it tracks itself, and can move back (rewind) to drop a duplicate.
type outWriter struct {
	w        io.WriterAt
	buf      []byte
	bufStart int64
	high     int64 // highest offset ever written
}

const outBuffer = 4 << 20

func newOutWriter(w io.WriterAt, start int64) *outWriter {
	return &outWriter{w: w, bufStart: start, buf: make([]byte, 0, outBuffer)}
}

func (o *outWriter) pos() int64 { return o.bufStart + int64(len(o.buf)) }

func (o *outWriter) write(b []byte) error {
	o.buf = append(o.buf, b...)
	if len(o.buf) >= outBuffer {
		return o.flush()
	}
	return nil
}

func (o *outWriter) flush() error {
	if len(o.buf) == 0 {
		return nil
	}
	if _, err := o.w.WriteAt(o.buf, o.bufStart); err != nil {
		return fmt.Errorf("write image at offset %d: %w", o.bufStart, err)
	}
	o.bufStart += int64(len(o.buf))
	o.high = max(o.high, o.bufStart)
	o.buf = o.buf[:0]
	return nil
}

// rewind moves the position back to off; what was written after it is
// overwritten by what follows (or truncated at the end).
func (o *outWriter) rewind(off int64) {
	if off >= o.bufStart {
		o.buf = o.buf[:off-o.bufStart]
		return
	}
	o.buf = o.buf[:0]
	o.bufStart = off
}
