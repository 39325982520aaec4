package eventlog

import (
	"bytes"
	"crypto"
	_ "crypto/sha1" // the sha1 bank
	_ "crypto/sha256"
	_ "crypto/sha512" // sha384, sha512
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Alg is a TPM hash algorithm id (TPM_ALG_ID).
type Alg uint16

// Hash algorithms of the PC Client banks.
const (
	SHA1   Alg = 0x0004
	SHA256 Alg = 0x000b
	SHA384 Alg = 0x000c
	SHA512 Alg = 0x000d
)

func (a Alg) hash() (crypto.Hash, bool) {
	switch a {
	case SHA1:
		return crypto.SHA1, true
	case SHA256:
		return crypto.SHA256, true
	case SHA384:
		return crypto.SHA384, true
	case SHA512:
		return crypto.SHA512, true
	}
	return 0, false
}

// Event is one TCG_PCR_EVENT2 record.
type Event struct {
	PCR     uint32
	Type    uint32
	Digests map[Alg][]byte
	Data    []byte
}

// Event types used by the description (PFP 10.4.1).
const (
	evNoAction = 0x00000003
)

// ErrNotCryptoAgile is returned for a log without the "Spec ID Event03"
// header (a TPM 1.2 style SHA-1 log).
var ErrNotCryptoAgile = errors.New("eventlog: not a crypto-agile (Spec ID Event03) log")

var specID = []byte("Spec ID Event03\x00")

// Bounds of the header: TPM banks are few and no TPM hash is longer than
// SHA-512.
const (
	maxAlgs   = 16
	maxDigest = 64
)

// reader consumes little-endian fields with bounds checks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = fmt.Errorf("eventlog: offset %d: %s needs %d bytes, %d left", r.off, what, n, len(r.b)-r.off)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *reader) u32(what string) uint32 {
	if p := r.take(4, what); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *reader) u16(what string) uint16 {
	if p := r.take(2, what); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

// Parse parses a crypto-agile event log. The header event is not returned.
func Parse(b []byte) ([]Event, error) {
	r := &reader{b: b}
	sizes, err := parseHeader(r)
	if err != nil {
		return nil, err
	}
	var events []Event
	for r.off < len(b) {
		e := parseEvent(r, sizes)
		if r.err != nil {
			return nil, fmt.Errorf("event %d: %w", len(events)+1, r.err)
		}
		events = append(events, e)
	}
	return events, nil
}

// parseHeader reads the TCG_PCR_EVENT holding TCG_EfiSpecIdEvent and
// returns the digest size of each algorithm.
func parseHeader(r *reader) (map[Alg]int, error) {
	r.u32("header PCR index")
	typ := r.u32("header event type")
	r.take(20, "header SHA-1 digest")
	data := r.take(int(r.u32("header event size")), "header event data")
	if r.err != nil {
		return nil, r.err
	}
	if typ != evNoAction || len(data) < 16 || !bytes.Equal(data[:16], specID) {
		return nil, ErrNotCryptoAgile
	}
	h := &reader{b: data, off: 16}
	h.take(4+1+1+1+1, "spec version") // platformClass, minor, major, errata, uintnSize
	n := h.u32("number of algorithms")
	if h.err == nil && (n > maxAlgs || int(n) > (len(data)-h.off)/4) {
		return nil, fmt.Errorf("eventlog: header: %d algorithms (at most %d, in %d bytes)", n, maxAlgs, len(data)-h.off)
	}
	sizes := map[Alg]int{}
	for range n {
		alg, size := Alg(h.u16("algorithm id")), int(h.u16("digest size"))
		if hash, ok := alg.hash(); (ok && hash.Size() != size) || size > maxDigest {
			return nil, fmt.Errorf("eventlog: header: algorithm 0x%04x has digest size %d", uint16(alg), size)
		}
		sizes[alg] = size
	}
	if h.err != nil {
		return nil, fmt.Errorf("eventlog: header: %w", h.err)
	}
	return sizes, nil
}

// parseEvent reads one TCG_PCR_EVENT2.
func parseEvent(r *reader, sizes map[Alg]int) Event {
	e := Event{PCR: r.u32("PCR index"), Type: r.u32("event type"), Digests: map[Alg][]byte{}}
	n := r.u32("digest count")
	if r.err == nil && int(n) > len(sizes) {
		r.err = fmt.Errorf("eventlog: offset %d: %d digests, but the header names %d algorithms", r.off, n, len(sizes))
	}
	if r.err != nil {
		return e
	}
	for range n {
		alg := Alg(r.u16("digest algorithm"))
		size, ok := sizes[alg]
		if !ok && r.err == nil {
			r.err = fmt.Errorf("eventlog: offset %d: digest algorithm 0x%04x is not in the header", r.off, uint16(alg))
		}
		e.Digests[alg] = r.take(size, "digest")
	}
	e.Data = r.take(int(r.u32("event size")), "event data")
	return e
}

// Replay recomputes the PCR values the events produce in bank alg:
// PCR = H(PCR || digest) from all-zero, skipping EV_NO_ACTION (PFP 10.4.1).
// PCRs no event touched are absent. The locality of the startup event
// (PCR 0 starting at 3 or 4, PFP 10.4.5.3) is honoured.
func Replay(events []Event, alg Alg) (map[uint32][]byte, error) {
	h, ok := alg.hash()
	if !ok {
		return nil, fmt.Errorf("eventlog: replay: unsupported algorithm 0x%04x", uint16(alg))
	}
	pcrs := map[uint32][]byte{}
	for i, e := range events {
		if e.Type == evNoAction {
			if loc, ok := startupLocality(e); ok && e.PCR == 0 {
				v := make([]byte, h.Size())
				v[len(v)-1] = loc
				pcrs[0] = v
			}
			continue
		}
		d, ok := e.Digests[alg]
		if !ok {
			return nil, fmt.Errorf("eventlog: replay: event %d (PCR %d) has no digest of algorithm 0x%04x", i+1, e.PCR, uint16(alg))
		}
		cur, ok := pcrs[e.PCR]
		if !ok {
			cur = make([]byte, h.Size())
		}
		hh := h.New()
		hh.Write(cur)
		hh.Write(d)
		pcrs[e.PCR] = hh.Sum(nil)
	}
	return pcrs, nil
}

// startupLocality decodes the "StartupLocality\0" EV_NO_ACTION event.
func startupLocality(e Event) (byte, bool) {
	const sig = "StartupLocality\x00"
	if len(e.Data) == len(sig)+1 && string(e.Data[:len(sig)]) == sig {
		return e.Data[len(sig)], true
	}
	return 0, false
}

// Algs returns the algorithms of an event, sorted.
func (e Event) Algs() []Alg {
	var a []Alg
	for k := range e.Digests {
		a = append(a, k)
	}
	slices.Sort(a)
	return a
}
