package argon2

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	xargon2 "golang.org/x/crypto/argon2"
)

// key runs Key with a background context and a fresh output buffer.
func key(t testing.TB, pass, salt []byte, p Params, n int) []byte {
	t.Helper()
	out := make([]byte, n)
	if _, err := Key(context.Background(), pass, salt, p, out, nil); err != nil {
		t.Fatalf("Key(%+v) = %v", p, err)
	}
	return out
}

// TestRFC9106Vectors checks the test vectors of RFC 9106 §5.1-5.3:
// m = 32 KiB, t = 3, p = 4, P = 32 x 0x01, S = 16 x 0x02, K = 8 x 0x03,
// X = 12 x 0x04, T = 32.
func TestRFC9106Vectors(t *testing.T) {
	for _, tt := range []struct {
		mode Mode
		tag  string
	}{
		{Argon2d, "512b391b6f1162975371d30919734294f868e3be3984f3c1a13a4db9fabe4acb"},
		{Argon2i, "c814d9d1dc7f37aa13f0d77f2494bda1c8de6b016dd388d29952a4c4672b6ce8"},
		{Argon2id, "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"},
	} {
		p := Params{Mode: tt.mode, Time: 3, Memory: 32, Lanes: 4,
			Secret: bytes.Repeat([]byte{3}, 8), Data: bytes.Repeat([]byte{4}, 12)}
		got := key(t, bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 16), p, 32)
		if hex.EncodeToString(got) != tt.tag {
			t.Errorf("Key(mode %d, RFC 9106 §5 inputs) = %x, want %s", tt.mode, got, tt.tag)
		}
	}
}

// xKey is x/crypto/argon2 for the modes it offers.
func xKey(mode Mode, pass, salt []byte, time, memory uint32, lanes uint8, n uint32) []byte {
	if mode == Argon2i {
		return xargon2.Key(pass, salt, time, memory, lanes, n)
	}
	return xargon2.IDKey(pass, salt, time, memory, lanes, n)
}

// TestMatchesXCrypto compares Argon2i and Argon2id with x/crypto/argon2
// over parameters that cross the corner cases: one lane and several,
// memory not a multiple of 4 * lanes, one pass and several, segments
// shorter and longer than one address block (128), short and long tags
// (H' with r >= 1), empty password and salt.
func TestMatchesXCrypto(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		time, memory uint32
		lanes        uint8
		n            uint32
	}{
		{1, 8, 1, 32}, {1, 64, 1, 4}, {3, 33, 2, 64}, {2, 1031, 3, 65}, {4, 2048, 4, 100},
		{1, 4096, 1, 512}, {2, 600, 16, 31}, {3, 4099, 5, 33},
	}
	for i := 0; i < 6; i++ {
		cases = append(cases, struct {
			time, memory uint32
			lanes        uint8
			n            uint32
		}{1 + r.Uint32N(3), 8 + r.Uint32N(3000), uint8(1 + r.IntN(8)), 4 + r.Uint32N(200)})
	}
	for _, c := range cases {
		c.memory = max(c.memory, 8*uint32(c.lanes))
		for _, mode := range []Mode{Argon2i, Argon2id} {
			pass, salt := make([]byte, r.IntN(40)), make([]byte, r.IntN(40))
			for _, b := range [][]byte{pass, salt} {
				for j := range b {
					b[j] = byte(r.Uint32())
				}
			}
			want := xKey(mode, pass, salt, c.time, c.memory, c.lanes, c.n)
			got := key(t, pass, salt, Params{Mode: mode, Time: c.time, Memory: c.memory, Lanes: uint32(c.lanes)}, int(c.n))
			if !bytes.Equal(got, want) {
				t.Errorf("Key(mode %d, t=%d m=%d p=%d T=%d) = %x, x/crypto/argon2 gives %x", mode, c.time, c.memory, c.lanes, c.n, got, want)
			}
		}
	}
}

func TestParamErrors(t *testing.T) {
	for _, tt := range []struct {
		p    Params
		n    int
		want string
	}{
		{Params{Mode: 3, Time: 1, Memory: 8, Lanes: 1}, 32, "unknown mode 3"},
		{Params{Time: 0, Memory: 8, Lanes: 1}, 32, "time 0"},
		{Params{Time: 1, Memory: 8, Lanes: 0}, 32, "lanes 0"},
		{Params{Time: 1, Memory: 8, Lanes: MaxLanes + 1}, 32, "lanes 16777216"},
		{Params{Time: 1, Memory: 15, Lanes: 2}, 32, "memory 15 KiB below 8 KiB per lane"},
		{Params{Time: 1, Memory: 8, Lanes: 1}, 3, "output length 3"},
	} {
		_, err := Key(context.Background(), nil, nil, tt.p, make([]byte, tt.n), nil)
		if !errors.Is(err, ErrParams) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Key(%+v, T=%d) = %v, want ErrParams with %q", tt.p, tt.n, err, tt.want)
		}
	}
}

// TestCancel cancels during the first pass: Key returns the context's
// error at the next slice boundary and zeroes the output.
func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := bytes.Repeat([]byte{0xff}, 32)
	calls := 0
	_, err := Key(ctx, []byte("p"), []byte("saltsalt"), Params{Mode: Argon2id, Time: 3, Memory: 1024, Lanes: 2}, out,
		func(done, total int64) {
			calls++
			cancel()
		})
	if !errors.Is(err, context.Canceled) || calls != 1 || !bytes.Equal(out, make([]byte, 32)) {
		t.Errorf("Key(cancelled after one slice) = %v after %d progress calls, out %x; want context.Canceled after 1, zeroed", err, calls, out)
	}
}

// TestProgress checks that progress reaches the total after every slice.
func TestProgress(t *testing.T) {
	var last, total int64
	n := 0
	p := Params{Mode: Argon2id, Time: 2, Memory: 256, Lanes: 2}
	if _, err := Key(context.Background(), nil, []byte("saltsalt"), p, make([]byte, 32), func(d, tot int64) {
		if d <= last {
			t.Errorf("progress went from %d to %d", last, d)
		}
		last, total = d, tot
		n++
	}); err != nil {
		t.Fatal(err)
	}
	if n != 8 || last != total || total != 2*256 {
		t.Errorf("progress: %d calls, last %d of %d; want 8 calls ending at 512 of 512", n, last, total)
	}
}

// FuzzMatchesXCrypto compares Key with x/crypto/argon2 on small random
// parameters.
func FuzzMatchesXCrypto(f *testing.F) {
	f.Add([]byte("password"), []byte("somesalt"), uint8(2), uint16(64), uint8(2), uint8(32), true)
	f.Add([]byte{}, []byte{}, uint8(1), uint16(8), uint8(1), uint8(4), false)
	f.Fuzz(func(t *testing.T, pass, salt []byte, time uint8, memory uint16, lanes, n uint8, id bool) {
		tc, l := uint32(time%4)+1, lanes%8+1
		m := max(uint32(memory)%2048, 8*uint32(l))
		tl := uint32(n)%128 + 4
		mode := Argon2i
		if id {
			mode = Argon2id
		}
		want := xKey(mode, pass, salt, tc, m, l, tl)
		got := key(t, pass, salt, Params{Mode: mode, Time: tc, Memory: m, Lanes: uint32(l)}, int(tl))
		if !bytes.Equal(got, want) {
			t.Fatalf("Key(mode %d, t=%d m=%d p=%d T=%d) = %x, x/crypto/argon2 gives %x", mode, tc, m, l, tl, got, want)
		}
	})
}

// TestCompress checks the platform's compress (SSE2 on amd64) against
// the portable Go code on random blocks, with and without xor, and with
// out aliasing an input.
func TestCompress(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	rnd := func() (b block) {
		for k := range b {
			b[k] = r.Uint64()
		}
		return b
	}
	for i := 0; i < 50; i++ {
		x, y, old := rnd(), rnd(), rnd()
		for _, xor := range []bool{false, true} {
			a, b := old, old
			compress(&a, &x, &y, xor)
			compressGeneric(&b, &x, &y, xor)
			if a != b {
				t.Fatalf("compress(xor %v) differs from compressGeneric on random blocks %d", xor, i)
			}
		}
		a, b := x, x
		compress(&a, &a, &y, false)
		compressGeneric(&b, &b, &y, false)
		if a != b {
			t.Fatalf("compress(out = x) differs from compressGeneric on random blocks %d", i)
		}
	}
}
