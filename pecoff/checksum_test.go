package pecoff

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// refChecksum is the algorithm as specified: 16-bit words, fold after
// every addition, the CheckSum field skipped.
func refChecksum(data []byte, off int) uint32 {
	var sum uint32
	for i := 0; i < len(data); i += 2 {
		var w uint32
		if i+1 < len(data) {
			w = uint32(binary.LittleEndian.Uint16(data[i:]))
		} else {
			w = uint32(data[i])
		}
		if i == off || i == off+2 {
			continue
		}
		sum += w
		sum = sum&0xffff + sum>>16
	}
	return sum + uint32(len(data))
}

func TestChecksumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{130, 131, 132, 133, 4096, 100001} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(r.UintN(256))
		}
		data[0], data[1] = 'M', 'Z'
		if got, want := peChecksum(data, 0x40), refChecksum(data, 0x40); got != want {
			t.Errorf("peChecksum(%d bytes) = %#x, want %#x", n, got, want)
		}
	}
	ff := make([]byte, 1000)
	for i := range ff {
		ff[i] = 0xff
	}
	if got, want := peChecksum(ff, 0x40), refChecksum(ff, 0x40); got != want {
		t.Errorf("peChecksum(all 0xff) = %#x, want %#x", got, want)
	}
}
