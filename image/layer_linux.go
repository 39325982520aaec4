package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// ErrDigest reports layer content that does not match its digest (the
// compressed blob) or its diffID (the uncompressed tar).
var ErrDigest = errors.New("digest mismatch")

// countReader counts bytes against the image budget.
type countReader struct {
	r io.Reader
	b *budget
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.b.bytes += int64(n)
	if c.b.bytes > c.b.lim.MaxTotalBytes {
		return n, fmt.Errorf("%w: more than %d uncompressed bytes", ErrLimit, c.b.lim.MaxTotalBytes)
	}
	return n, err
}

// capReader fails once more than left bytes are read (a compressed blob
// is never larger than the uncompressed budget plus a little framing).
type capReader struct {
	r         io.Reader
	read, max int64
	onRead    func(int)
}

func (c *capReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.onRead != nil {
		c.onRead(n)
	}
	if c.read += int64(n); c.read > c.max+1<<20 {
		return n, fmt.Errorf("%w: compressed blob over %d bytes", ErrLimit, c.max)
	}
	return n, err
}

// hashReader hashes what is read through it in a goroutine of its own,
// so that hashing overlaps with unpacking.
type hashReader struct {
	r    io.Reader
	h    hash.Hash
	ch   chan *[]byte
	done chan struct{}
	sum  []byte
}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

func newHashReader(r io.Reader) *hashReader {
	hr := &hashReader{r: r, h: sha256.New(), ch: make(chan *[]byte, 32), done: make(chan struct{})}
	go func() {
		defer close(hr.done)
		for b := range hr.ch {
			hr.h.Write(*b)
			chunkPool.Put(b)
		}
	}()
	return hr
}

func (hr *hashReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	for rest := p[:n]; len(rest) > 0; {
		b := chunkPool.Get().(*[]byte)
		m := min(len(rest), cap(*b))
		*b = append((*b)[:0], rest[:m]...)
		hr.ch <- b
		rest = rest[m:]
	}
	return n, err
}

// Sum stops the hashing goroutine and returns the digest, hex encoded.
func (hr *hashReader) Sum() string {
	if hr.sum == nil {
		close(hr.ch)
		<-hr.done
		hr.sum = hr.h.Sum(nil)
	}
	return hex.EncodeToString(hr.sum)
}

// decompress sniffs the compression of the blob in br (gzip, zstd or none)
// and returns the uncompressed stream with the hasher that computes its
// diffID: ch itself for an uncompressed blob. release frees the decoder.
func decompress(br *bufio.Reader, ch *hashReader) (ur io.Reader, uh *hashReader, release func(), err error) {
	magic, _ := br.Peek(4)
	var zr io.Reader
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("gzip: %w", err)
		}
		zr, release = gz, func() { gz.Close() }
	case bytes.HasPrefix(magic, zstdMagic):
		zd, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("zstd: %w", err)
		}
		zr, release = zd, zd.Close
	default:
		return br, ch, func() {}, nil
	}
	uh = newHashReader(zr)
	return uh, uh, release, nil
}

// applyLayer streams layer l into the directory root (fresh: a new empty
// directory, the first layer): the compressed blob
// is hashed and checked against l's digest, decompressed (gzip, zstd or
// none, sniffed from the content) and hashed again against diffID while
// the tar is applied. A mismatch is reported after the whole stream is
// read; the caller then throws the directory away.
func applyLayer(ctx context.Context, root string, fresh bool, l v1.Layer, diffID v1.Hash, b *budget) (Stats, error) {
	digest, err := l.Digest()
	if err != nil {
		return Stats{}, fmt.Errorf("apply layer %s: digest: %w", diffID, err)
	}
	if digest.Algorithm != "sha256" {
		return Stats{}, fmt.Errorf("apply layer %s: unsupported digest algorithm %q", diffID, digest.Algorithm)
	}
	if diffID.Algorithm != "sha256" {
		return Stats{}, fmt.Errorf("apply layer %s: unsupported diffID algorithm %q", digest, diffID.Algorithm)
	}
	rc, err := l.Compressed()
	if err != nil {
		return Stats{}, fmt.Errorf("apply layer %s: open blob: %w", digest, err)
	}
	defer rc.Close()
	ch := newHashReader(&capReader{r: rc, max: b.lim.MaxTotalBytes, onRead: b.onRead})
	defer ch.Sum()
	br := bufio.NewReaderSize(ch, 1<<20)
	ur, uh, release, err := decompress(br, ch)
	if err != nil {
		return Stats{}, fmt.Errorf("apply layer %s: %w", digest, err)
	}
	defer release()
	defer uh.Sum()
	cr := &countReader{r: ur, b: b}
	rootfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return Stats{}, &os.PathError{Op: "apply layer", Path: root, Err: err}
	}
	defer unix.Close(rootfd)
	a := newApplier(ctx, rootfd, fresh, b)
	if err := a.apply(cr); err != nil {
		return a.stats, fmt.Errorf("apply layer %s: %w", digest, err)
	}
	// Read what follows the end-of-archive marker so both digests cover
	// the whole blob.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return a.stats, fmt.Errorf("apply layer %s: read to end: %w", digest, err)
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return a.stats, fmt.Errorf("apply layer %s: read blob to end: %w", digest, err)
	}
	if got := ch.Sum(); got != digest.Hex {
		return a.stats, fmt.Errorf("apply layer %s: %w: blob has sha256:%s", digest, ErrDigest, got)
	}
	if got := uh.Sum(); got != diffID.Hex {
		return a.stats, fmt.Errorf("apply layer %s: %w: uncompressed tar has sha256:%s, diffID is %s", digest, ErrDigest, got, diffID)
	}
	return a.stats, nil
}
