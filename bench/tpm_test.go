package bench

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"initos/internal/testenv"
	"initos/luks2"
	"initos/tpm2"
	"initos/tpm2/swtpmtest"
)

// BenchmarkTPMUnlock measures the TPM unlock path end to end on one swtpm
// (TCP): unseal the systemd-tpm2 token (a PCR 7 policy enrolled by
// systemd-cryptenroll 252) and open its pbkdf2 keyslot with base64(secret).
//
//   - initos: tpm2.Unseal + luks2 UnlockSlot, in process.
//   - systemd-cryptsetup: `systemd-cryptsetup attach` on the same image and
//     TPM; it unseals, opens the keyslot and then fails at the
//     device-mapper step (the host has no dm), so it measures the same work
//     plus process start-up. Its TPM commands are counted by a proxy.
//
// Both report tpm_cmds/op (TPM round trips per unlock); initos reports
// x_systemd (speed ratio, >1 is faster).
func BenchmarkTPMUnlock(b *testing.B) {
	enroll := testenv.Tool(b, "systemd-cryptenroll")
	sw := swtpmtest.StartTCP(b)
	img := tpmBenchImage(b, enroll, sw)
	proxy := tpmStartProxy(b, sw.Port)
	var cRate float64
	b.Run("systemd-cryptsetup", func(b *testing.B) {
		if _, err := os.Stat("/lib/systemd/systemd-cryptsetup"); err != nil {
			b.Skip("systemd-cryptsetup not installed")
		}
		var cmds int64
		for b.Loop() {
			b.StopTimer()
			tpmFlush(b, sw) // systemd-cryptsetup leaves sessions loaded when dm fails
			start := proxy.cmds.Load()
			b.StartTimer()
			tpmRunSystemd(b, proxy.port, img)
			cmds = proxy.cmds.Load() - start
		}
		b.ReportMetric(float64(cmds), "tpm_cmds/op")
		cRate = float64(b.N) / b.Elapsed().Seconds()
	})
	b.Run("initos", func(b *testing.B) {
		b.ReportAllocs()
		f, h, tok := tpmOpenImage(b, img)
		defer f.Close()
		dev, _ := tpm2.ParseDevice(fmt.Sprintf("swtpm:host=127.0.0.1,port=%d", sw.Port))
		tpmFlush(b, sw)
		var cmds int
		for b.Loop() {
			cmds = tpmUnlockOnce(b, dev, f, h, tok)
		}
		b.ReportMetric(float64(cmds), "tpm_cmds/op")
		if cRate > 0 {
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/cRate, "x_systemd")
		}
	})
}

// tpmFlush flushes what earlier clients left loaded (swtpm has no
// resource manager).
func tpmFlush(b *testing.B, sw *swtpmtest.Swtpm) {
	dev, _ := tpm2.ParseDevice(sw.Device())
	t, err := tpm2.Open(dev)
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	if err := tpm2.FlushAll(t); err != nil {
		b.Fatal(err)
	}
}

func tpmUnlockOnce(b *testing.B, dev tpm2.Device, f *os.File, h *luks2.Header, tok *tpm2.Token) int {
	t, err := tpm2.Open(dev)
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	c := &tpm2.Counter{TPM: t}
	s, err := tok.Sealed()
	if err != nil {
		b.Fatal(err)
	}
	secret, err := tpm2.Unseal(c, s, tpm2.UnsealOptions{})
	if err != nil {
		b.Fatal(err)
	}
	slot, _ := tok.Keyslot()
	vk, err := h.UnlockSlot(f, strconv.Itoa(slot), []byte(base64.StdEncoding.EncodeToString(secret)))
	if err != nil {
		b.Fatal(err)
	}
	vk.Destroy()
	return c.Count()
}

// tpmBenchImage formats an image and enrolls a PCR 7 token with systemd.
func tpmBenchImage(b *testing.B, enroll string, sw *swtpmtest.Swtpm) string {
	dir := b.TempDir()
	img, key := filepath.Join(dir, "img"), filepath.Join(dir, "key")
	os.WriteFile(key, []byte("passphrase"), 0o600)
	os.WriteFile(img, make([]byte, 20<<20), 0o600)
	testenv.Run(b, "cryptsetup", "luksFormat", "-q", "--type", "luks2", "--pbkdf", "pbkdf2",
		"--pbkdf-force-iterations", "1000", img, key)
	if out, err := exec.Command(enroll, "--unlock-key-file="+key, "--tpm2-device="+sw.Device(), "--tpm2-pcrs=7", img).CombinedOutput(); err != nil {
		b.Fatalf("systemd-cryptenroll: %v\n%s", err, out)
	}
	return img
}

func tpmOpenImage(b *testing.B, img string) (*os.File, *luks2.Header, *tpm2.Token) {
	f, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	h, err := luks2.ReadHeader(f)
	if err != nil {
		b.Fatal(err)
	}
	ids, _ := h.Tokens()
	if len(ids) == 0 {
		b.Fatal("no token")
	}
	tok, err := tpm2.ParseToken(h.Meta.Tokens[ids[0]])
	if err != nil {
		b.Fatal(err)
	}
	return f, h, tok
}

func tpmRunSystemd(b *testing.B, port int, img string) {
	cmd := exec.Command("/lib/systemd/systemd-cryptsetup", "attach", "initos-bench", img, "-",
		fmt.Sprintf("tpm2-device=swtpm:port=%d,headless=true", port))
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=debug")
	out, _ := cmd.CombinedOutput() // fails at the device-mapper step
	if !strings.Contains(string(out), "Completed TPM2 key unsealing") {
		b.Fatalf("systemd-cryptsetup did not unseal:\n%s", out)
	}
}

// tpmProxy forwards the simulator-protocol port pair P, P+1 of an swtpm
// and counts TPM_SEND_COMMAND frames on the command port.
type tpmProxy struct {
	port int
	cmds atomic.Int64
}

func tpmStartProxy(b *testing.B, target int) *tpmProxy {
	p := &tpmProxy{port: swtpmtest.FreePortPair(b)}
	var wg sync.WaitGroup
	b.Cleanup(wg.Wait) // runs after the listeners below are closed
	for i, count := range []bool{true, false} {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p.port+i))
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); p.serve(l, target+i, count) }()
		b.Cleanup(func() { l.Close() })
	}
	return p
}

func (p *tpmProxy) serve(l net.Listener, target int, count bool) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(target))
		if err != nil {
			c.Close()
			continue
		}
		go func() { io.Copy(c, s); c.Close() }()
		go func() {
			if count {
				p.countFrames(s, c)
			} else {
				io.Copy(s, c)
			}
			s.Close()
		}()
	}
}

// countFrames copies client->server and counts TPM commands: raw ones
// (the libtss2 swtpm TCTI sends the bare command: tag u16, size u32, ...)
// and simulator-framed ones (u32 TPM_SEND_COMMAND=8, u8 locality, u32
// length, command).
func (p *tpmProxy) countFrames(dst io.Writer, src io.Reader) {
	for {
		var hdr [6]byte
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			return
		}
		dst.Write(hdr[:])
		var rest int64
		switch {
		case binary.BigEndian.Uint32(hdr[:4]) == 8: // simulator framing
			var l [3]byte
			if _, err := io.ReadFull(src, l[:]); err != nil {
				return
			}
			dst.Write(l[:])
			rest = int64(binary.BigEndian.Uint32(append(hdr[5:6:6], l[:]...)))
		case hdr[0] == 0x80: // raw TPM command
			rest = int64(binary.BigEndian.Uint32(hdr[2:6])) - 6
		default:
			io.Copy(dst, src)
			return
		}
		if _, err := io.CopyN(dst, src, rest); err != nil {
			return
		}
		p.cmds.Add(1)
	}
}
