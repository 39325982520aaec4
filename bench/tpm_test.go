package bench

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"initos/efivar"
	"initos/enroll"
	"initos/internal/testenv"
	"initos/luks2"
	"initos/tpm2"
	"initos/tpm2/swtpmtest"
)

const systemdCryptsetup = "/lib/systemd/systemd-cryptsetup"

// BenchmarkTPMUnlock compares TPM unlocks of the same volume on the same
// swtpm, process against process, each iteration running both in turn
// (interleaved, so machine load hits both alike):
//
//   - systemd-cryptsetup: `systemd-cryptsetup attach NAME IMG -
//     tpm2-device=swtpm:port=P,headless=true` (systemd 252). It reads the
//     header, parses the token, unseals, opens the keyslot, then fails at
//     the device-mapper step (this host has none): a few syscalls.
//   - initos: `initos luks unlock-tpm2 --tpm2-device swtpm:host=…,port=P
//     IMG` (no NAME: it stops after opening the keyslot).
//
// Both talk TCP to the same swtpm directly (no proxy in the timed runs;
// the TPM command counts come from a separate pass where both go through
// the same counting proxy). Both pay process start-up, header read, token
// parse, the TPM round trips and the PBKDF2 of the keyslot. The TPM's own
// CPU time (swtpm) is in the wall time of both and in the CPU time of
// neither. Sub-benchmarks: a token systemd-cryptenroll enrolled (PCR 7)
// and one initos enrolled (PCR 7 + PCR 15 = 0, pinned primary).
//
// Metrics: systemd_ms, initos_ms (wall per unlock), systemd_cpu_ms,
// initos_cpu_ms (user+system time of the process, from its rusage),
// x_wall = systemd/initos wall, x_cpu = systemd/initos CPU, and the TPM
// commands each sends. BenchmarkTPMUnlockLibrary measures
// enroll.Unlock in process for reference (what initos-init runs).
func BenchmarkTPMUnlock(b *testing.B) {
	enrollTool := testenv.Tool(b, "systemd-cryptenroll")
	if _, err := os.Stat(systemdCryptsetup); err != nil {
		testenv.Missing(b, "%s not installed (package systemd)", systemdCryptsetup)
	}
	cli := buildInitos(b)
	sw := swtpmtest.StartTCP(b)
	tpmBenchExtend(b, sw, 7)
	for _, tc := range []struct {
		name string
		img  func() string
	}{
		{"systemd-token", func() string { return tpmSystemdImage(b, enrollTool, sw) }},
		{"initos-token", func() string { return tpmInitosImage(b, cli, sw) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			img := tc.img()
			sd := tpmPeer{name: "systemd", args: func(port int) []string {
				return []string{systemdCryptsetup, "attach", "initos-bench", img, "-",
					fmt.Sprintf("tpm2-device=swtpm:port=%d,headless=true", port)}
			}, ok: "Completed TPM2 key unsealing"}
			us := tpmPeer{name: "initos", args: func(port int) []string {
				return []string{cli, "luks", "unlock-tpm2", "--tpm2-device", fmt.Sprintf("swtpm:host=127.0.0.1,port=%d", port), img}
			}}
			for b.Loop() {
				sd.run(b, sw, sw.Port)
				us.run(b, sw, sw.Port)
			}
			n := float64(b.N)
			b.ReportMetric(sd.wall.Seconds()*1e3/n, "systemd_ms")
			b.ReportMetric(us.wall.Seconds()*1e3/n, "initos_ms")
			b.ReportMetric(sd.cpu.Seconds()*1e3/n, "systemd_cpu_ms")
			b.ReportMetric(us.cpu.Seconds()*1e3/n, "initos_cpu_ms")
			b.ReportMetric(sd.wall.Seconds()/us.wall.Seconds(), "x_wall")
			b.ReportMetric(sd.cpu.Seconds()/us.cpu.Seconds(), "x_cpu")
			proxy := tpmStartProxy(b, sw.Port)
			b.ReportMetric(float64(sd.count(b, sw, proxy)), "systemd_tpm_cmds")
			b.ReportMetric(float64(us.count(b, sw, proxy)), "initos_tpm_cmds")
		})
	}
}

// tpmPeer is one side of BenchmarkTPMUnlock: a command and its totals.
type tpmPeer struct {
	name      string
	args      func(port int) []string
	ok        string // text its debug log must contain ("" = exit 0 is success)
	wall, cpu time.Duration
}

// run runs the peer once against port, timing it; the swtpm is flushed
// first (untimed): systemd-cryptsetup leaves its sessions loaded when the
// dm step fails, and a bare swtpm then runs out of session slots.
func (p *tpmPeer) run(b *testing.B, sw *swtpmtest.Swtpm, port int) {
	b.StopTimer()
	tpmBenchFlush(b, sw)
	a := p.args(port)
	cmd := exec.Command(a[0], a[1:]...)
	if p.ok != "" {
		cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=debug")
	}
	b.StartTimer()
	start := time.Now()
	out, err := cmd.CombinedOutput()
	p.wall += time.Since(start)
	if cmd.ProcessState != nil {
		p.cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	switch {
	case p.ok == "" && err != nil:
		b.Fatalf("%s: %v\n%s", p.name, err, out)
	case p.ok != "" && !strings.Contains(string(out), p.ok):
		b.Fatalf("%s did not unseal:\n%s", p.name, out)
	}
}

// count runs the peer once (untimed) through the counting proxy and
// returns how many TPM commands it sent.
func (p *tpmPeer) count(b *testing.B, sw *swtpmtest.Swtpm, proxy *tpmProxy) int64 {
	saved := *p
	start := proxy.cmds.Load()
	p.run(b, sw, proxy.port)
	n := proxy.cmds.Load() - start
	*p = saved
	return n
}

// BenchmarkTPMUnlockLibrary is what initos-init runs, in process: read
// the header, parse the tokens, unseal, open the keyslot (enroll.Unlock),
// over the same TCP transport as above, connection set-up included.
func BenchmarkTPMUnlockLibrary(b *testing.B) {
	enrollTool := testenv.Tool(b, "systemd-cryptenroll")
	sw := swtpmtest.StartTCP(b)
	tpmBenchExtend(b, sw, 7)
	img := tpmSystemdImage(b, enrollTool, sw)
	dev, err := tpm2.ParseDevice(sw.Device())
	if err != nil {
		b.Fatal(err)
	}
	tpmBenchFlush(b, sw)
	b.ReportAllocs()
	for b.Loop() {
		tpmUnlockLibrary(b, dev, img)
	}
}

func tpmUnlockLibrary(b *testing.B, dev tpm2.Device, img string) {
	f, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h, err := luks2.ReadHeader(f)
	if err != nil {
		b.Fatal(err)
	}
	t, err := tpm2.Open(dev)
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	vk, _, err := enroll.Unlock(t, f, h, enroll.UnlockOptions{})
	if err != nil {
		b.Fatal(err)
	}
	vk.Destroy()
}

// buildInitos builds the initos CLI once into a temp dir.
func buildInitos(b *testing.B) string {
	cli := filepath.Join(b.TempDir(), "initos")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", cli, "initos/cmd/initos")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build initos: %v\n%s", err, out)
	}
	return cli
}

// tpmBenchExtend gives PCR pcr a non-zero value, as firmware would.
func tpmBenchExtend(b *testing.B, sw *swtpmtest.Swtpm, pcr int) {
	withBenchTPM(b, sw, func(t transport.TPM) error {
		d := sha256.Sum256([]byte("secure boot on"))
		return tpm2.ExtendPCR(t, tpm2.SHA256, pcr, d[:])
	})
}

// tpmBenchFlush flushes what earlier clients left loaded (swtpm has no
// resource manager).
func tpmBenchFlush(b *testing.B, sw *swtpmtest.Swtpm) {
	withBenchTPM(b, sw, tpm2.FlushAll)
}

func withBenchTPM(b *testing.B, sw *swtpmtest.Swtpm, fn func(transport.TPM) error) {
	dev, _ := tpm2.ParseDevice(sw.Device())
	t, err := tpm2.Open(dev)
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	if err := fn(t); err != nil {
		b.Fatal(err)
	}
}

// tpmImage formats a 20 MiB LUKS2 image with cryptsetup (pbkdf2, 1000
// iterations for keyslot 0) and returns it with its key file.
func tpmImage(b *testing.B) (img, key string) {
	dir := b.TempDir()
	img, key = filepath.Join(dir, "img"), filepath.Join(dir, "key")
	os.WriteFile(key, []byte("passphrase"), 0o600)
	os.WriteFile(img, make([]byte, 20<<20), 0o600)
	testenv.Run(b, "cryptsetup", "luksFormat", "-q", "--type", "luks2", "--pbkdf", "pbkdf2",
		"--pbkdf-force-iterations", "1000", img, key)
	return img, key
}

// tpmSystemdImage enrolls a PCR 7 token with systemd-cryptenroll.
func tpmSystemdImage(b *testing.B, enroll string, sw *swtpmtest.Swtpm) string {
	img, key := tpmImage(b)
	if out, err := exec.Command(enroll, "--unlock-key-file="+key, "--tpm2-device="+sw.Device(), "--tpm2-pcrs=7", img).CombinedOutput(); err != nil {
		b.Fatalf("systemd-cryptenroll: %v\n%s", err, out)
	}
	return img
}

// tpmInitosImage enrolls the installer's default policy without a signed
// PCR 11 (PCR 7 + PCR 15 = 0) with initos luks enroll-tpm2.
func tpmInitosImage(b *testing.B, cli string, sw *swtpmtest.Swtpm) string {
	img, key := tpmImage(b)
	efi := b.TempDir()
	s := &efivar.Dir{Path: efi}
	s.Set("SecureBoot", efivar.GlobalVariable, 6, []byte{1})
	s.Set("SetupMode", efivar.GlobalVariable, 6, []byte{0})
	out, err := exec.Command(cli, "luks", "enroll-tpm2", "--efivarfs", efi, "--tpm2-device", sw.Device(),
		"--tpm2-pcrs", "7+15:sha256="+strings.Repeat("0", 64), "--unlock-key-file", key, img).CombinedOutput()
	if err != nil {
		b.Fatalf("initos luks enroll-tpm2: %v\n%s", err, out)
	}
	return img
}

// tpmProxy forwards the port pair P, P+1 of an swtpm and counts TPM
// commands on the command port.
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
