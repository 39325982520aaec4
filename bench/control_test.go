package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"initos/control"
	"initos/control/client"
	"initos/internal/testenv"
	"initos/tpm2"
	"initos/tpm2/swtpmtest"
)

// ctlBackend answers status like an initrd stopped at unlock.
type ctlBackend struct{ control.Backend }

func (ctlBackend) Status(context.Context) (control.Status, error) {
	return control.Status{Stage: "wait-control", Mode: "boot",
		Failure: &control.Failure{Step: "unlock", Message: "volume 3f2a: PCR 7 mismatch"}}, nil
}

// ctlBench is the shared fixture: owner key files, a known_hosts, servers.
type ctlBench struct {
	dir, id, knownHosts string
	owner               ssh.Signer
	dbPort              int
}

// BenchmarkControlStatus measures SSH connect + handshake + `status` +
// disconnect, one whole connection per operation, interleaved in each
// iteration so the shared machine's load hits all alike:
//
//   - go-client: control/client in process against our server (in process);
//   - initos-ctl: the `initos ctl --host H status` binary against our server;
//   - openssh: Debian's ssh against our server (software ECDSA P-256 host key);
//   - openssh-tpm: the same with the host key signing in an swtpm;
//   - dropbear: Debian's ssh against Debian's dropbear 2022.83 (the server
//     dropbear-initramfs ships) on 127.0.0.1, ECDSA P-256 host key, with a
//     forced command printing the same status text.
//
// Every client logs in with an ed25519 key, and both servers negotiate
// curve25519-sha256. It reports s/op per pair and x_dropbear = dropbear
// wall / ours (openssh client on both sides; > 1: ours is faster), and the
// server CPU per connection of both (ours: this process's rusage during
// its openssh runs; dropbear: /proc utime+stime of the daemon and its
// reaped children).
func BenchmarkControlStatus(b *testing.B) {
	sshBin := testenv.Tool(b, "ssh")
	dropbear := testenv.Tool(b, "dropbear")
	keygen := testenv.Tool(b, "dropbearkey")
	unshare := testenv.Tool(b, "unshare")
	testenv.RequireRoot(b)
	f := newCtlBench(b)
	ours := f.serve(b, softHostKey(b))
	tpmAddr := f.serve(b, tpmHostKey(b))
	db := f.startDropbear(b, dropbear, keygen, unshare)
	initos := buildInitos(b)
	o := client.Options{Identities: []ssh.Signer{f.owner}, KnownHosts: f.knownHosts}

	var t [5]time.Duration
	var oursCPU, dbCPU time.Duration
	for b.Loop() {
		t[0] += timed(b, func() error {
			_, err := o.Run(context.Background(), ours, "status", nil, io.Discard, io.Discard)
			return err
		})
		t[1] += timed(b, func() error {
			return f.run(exec.Command(initos, "ctl", "--identity", f.id, "--known-hosts", f.knownHosts, "--host", ours, "status"))
		})
		before := selfCPU()
		t[2] += timed(b, func() error { return f.run(f.ssh(sshBin, ours)) })
		oursCPU += selfCPU() - before
		t[3] += timed(b, func() error { return f.run(f.ssh(sshBin, tpmAddr)) })
		before = pidCPU(db.Process.Pid)
		t[4] += timed(b, func() error { return f.run(f.ssh(sshBin, "127.0.0.1:"+strconv.Itoa(f.dbPort))) })
		dbCPU += pidCPU(db.Process.Pid) - before
	}
	n := float64(b.N)
	for i, name := range []string{"go-client", "initos-ctl", "openssh", "openssh-tpm", "dropbear"} {
		b.ReportMetric(t[i].Seconds()/n, name+"-s/op")
	}
	b.ReportMetric(t[4].Seconds()/t[2].Seconds(), "x_dropbear")
	b.ReportMetric(oursCPU.Seconds()/n, "ours-server+self-cpu-s/op")
	b.ReportMetric(dbCPU.Seconds()/n, "dropbear-server-cpu-s/op")
}

func timed(b *testing.B, f func() error) time.Duration {
	start := time.Now()
	if err := f(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func newCtlBench(b *testing.B) *ctlBench {
	dir := b.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, _ := ssh.MarshalPrivateKey(priv, "owner")
	f := &ctlBench{dir: dir, id: filepath.Join(dir, "id"), knownHosts: filepath.Join(dir, "known_hosts")}
	os.WriteFile(f.id, pem.EncodeToMemory(blk), 0o600)
	f.owner, _ = ssh.NewSignerFromKey(priv)
	return f
}

func softHostKey(b *testing.B) ssh.Signer {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := ssh.NewSignerFromSigner(k)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func tpmHostKey(b *testing.B) ssh.Signer {
	sw := swtpmtest.Start(b)
	d, _ := tpm2.ParseDevice(sw.Device())
	tpm, err := tpm2.Open(d)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tpm.Close() })
	s, k, err := control.HostKeySigner(tpm)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { k.Close() })
	return s
}

// serve starts our server with host key hk and pins it.
func (f *ctlBench) serve(b *testing.B, hk ssh.Signer) string {
	unlimited := control.Rate{Burst: 1 << 20, Every: time.Nanosecond}
	s, err := control.NewServer(control.Config{HostKey: hk, PerSource: unlimited, Global: unlimited,
		AuthorizedKeys: []string{string(ssh.MarshalAuthorizedKey(f.owner.PublicKey()))}}, ctlBackend{})
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, l); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	if err := client.AddKnownHost(f.knownHosts, []string{l.Addr().String()}, hk.PublicKey()); err != nil {
		b.Fatal(err)
	}
	return l.Addr().String()
}

// startDropbear runs dropbear in a private mount namespace whose /root
// holds the owner's authorized_keys (dropbear has no option to name the
// file; the host's /root is not touched).
func (f *ctlBench) startDropbear(b *testing.B, dropbear, keygen, unshare string) *exec.Cmd {
	root := filepath.Join(f.dir, "root")
	os.MkdirAll(filepath.Join(root, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(root, ".ssh", "authorized_keys"), ssh.MarshalAuthorizedKey(f.owner.PublicKey()), 0o600)
	status := filepath.Join(f.dir, "status.txt")
	os.WriteFile(status, []byte("stage: wait-control\nmode: boot\nfailure: unlock: volume 3f2a: PCR 7 mismatch\n"), 0o644)
	hk := filepath.Join(f.dir, "dropbear_ecdsa")
	if out, err := exec.Command(keygen, "-t", "ecdsa", "-s", "256", "-f", hk).CombinedOutput(); err != nil {
		b.Fatalf("dropbearkey: %v\n%s", err, out)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	f.dbPort = l.Addr().(*net.TCPAddr).Port
	l.Close()
	script := "mount --make-rprivate / && mount --bind " + root + " /root && exec " + dropbear +
		" -F -E -s -m -P " + filepath.Join(f.dir, "db.pid") + " -r " + hk + " -p 127.0.0.1:" + strconv.Itoa(f.dbPort) + " -c 'cat " + status + "'"
	cmd := exec.Command(unshare, "--mount", "sh", "-c", script)
	var logb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logb, &logb
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(f.dbPort)); err == nil {
			c.Close()
			break
		}
		if i > 200 {
			b.Fatalf("dropbear did not listen:\n%s", logb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, err := exec.Command(keygen, "-y", "-f", hk).Output()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err == nil {
			client.AddKnownHost(f.knownHosts, []string{"127.0.0.1:" + strconv.Itoa(f.dbPort)}, pub)
		}
	}
	return cmd
}

// ssh returns an OpenSSH command running status on addr.
func (f *ctlBench) ssh(bin, addr string) *exec.Cmd {
	host, port, _ := net.SplitHostPort(addr)
	return exec.Command(bin, "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile="+f.knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "HostKeyAlgorithms=ecdsa-sha2-nistp256", "-i", f.id, "-p", port, "-l", "root", host, "status")
}

// run runs a client command that must print the status.
func (f *ctlBench) run(cmd *exec.Cmd) error {
	cmd.Env = []string{"HOME=" + f.dir, "PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("PCR 7 mismatch")) {
		return &exec.Error{Name: strings.Join(cmd.Args, " "), Err: errorf("%v: %s", err, out)}
	}
	return nil
}

func errorf(format string, args ...any) error {
	return fmt.Errorf(format, args...)
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pidCPU is the CPU time of pid and its reaped children (/proc/PID/stat
// utime stime cutime cstime, in clock ticks of 10 ms).
func pidCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} { // fields 14..17, counted from the state field (3)
		v, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
