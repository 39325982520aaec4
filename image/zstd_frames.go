package image

import (
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// zstdFrameSize is the uncompressed size of each zstd frame of a layer.
const zstdFrameSize = 8 << 20

// frameWriter compresses its input as a sequence of independent zstd
// frames of zstdFrameSize bytes (RFC 8878 §3.1: a stream may hold several
// frames; every zstd decoder reads them in order), compressed in parallel
// and written in order. The output depends only on the bytes written, not
// on write sizes or the number of goroutines, and costs ~1% in size
// against one frame. (The streaming encoder keeps about one core busy;
// frames use them all, as pigz does for gzip.)
type frameWriter struct {
	w     io.Writer
	enc   *zstd.Encoder // EncodeAll is safe for concurrent use
	buf   []byte        // the frame being filled
	order chan chan []byte
	done  chan error
	sent  bool
	err   error
}

var frameBufs = sync.Pool{New: func() any { return make([]byte, 0, zstdFrameSize) }}

func newFrameWriter(w io.Writer, level zstd.EncoderLevel) (*frameWriter, error) {
	// EncodeAll runs on at most "concurrency" encoders at once.
	inflight := min(runtime.GOMAXPROCS(0)+1, 16)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(inflight),
		zstd.WithWindowSize(zstdFrameSize))
	if err != nil {
		return nil, err
	}
	fw := &frameWriter{w: w, enc: enc, buf: frameBufs.Get().([]byte)[:0],
		order: make(chan chan []byte, inflight), done: make(chan error, 1)}
	go fw.writeOut()
	return fw, nil
}

// writeOut writes the compressed frames in order.
func (fw *frameWriter) writeOut() {
	var err error
	for r := range fw.order {
		out := <-r
		if err == nil {
			_, err = fw.w.Write(out)
		}
	}
	fw.done <- err
}

func (fw *frameWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		m := min(len(p), zstdFrameSize-len(fw.buf))
		fw.buf = append(fw.buf, p[:m]...)
		p = p[m:]
		if len(fw.buf) == zstdFrameSize {
			fw.submit()
		}
	}
	return n, nil
}

// submit compresses the filled frame in a goroutine of its own.
func (fw *frameWriter) submit() {
	in := fw.buf
	fw.buf = frameBufs.Get().([]byte)[:0]
	r := make(chan []byte, 1)
	fw.order <- r // blocks while too many frames are in flight
	fw.sent = true
	go func() {
		out := fw.enc.EncodeAll(in, make([]byte, 0, len(in)/2))
		frameBufs.Put(in[:0])
		r <- out
	}()
}

// Close compresses what is left (an empty input is one empty frame) and
// waits for every frame to be written.
func (fw *frameWriter) Close() error {
	if fw.order == nil {
		return fw.err
	}
	if len(fw.buf) > 0 || !fw.sent {
		fw.submit()
	}
	close(fw.order)
	fw.err = <-fw.done
	fw.order = nil
	fw.enc.Close()
	return fw.err
}
