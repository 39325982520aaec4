package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"initos/bootconfig"
	"initos/internal/bootdisk"
	rootreport "initos/internal/bootdisk/report"
	"initos/internal/testenv"
	"initos/internal/vmtest"
)

// BenchmarkControlRecovery measures the control plane in the real initrd
// (OVMF, swtpm, Debian's kernel, one virtio disk: ESP + LUKS2 + btrfs root
// enrolled to the TPM with Secure Boot on), booted with Secure Boot off so
// that PCR 7 no longer matches: the unlock fails, initos-init loads the
// NIC's driver, gets an address by DHCP from qemu and serves SSH; OpenSSH's
// client then sends the passphrase (`ssh root@vm unlock`) and the boot
// goes on to the root's /sbin/init. Metrics (means):
//
//   - power-on-to-ssh-s: host wall time from qemu's start to the first
//     ssh-keyscan answer through the forwarded port (firmware included);
//   - guest-to-ssh-s: the kernel's clock when the server listens;
//   - unlock-to-init-s: guest time from the unlock (the backend's log
//     line) to the root's init reading /proc/uptime;
//   - unlock-rtt-s: the ssh unlock command's wall time on the host.
//
// The peer, booted on the same machine in each iteration (interleaved), is
// Debian's initramfs-tools with dropbear set up as dropbear-initramfs does
// (dropbearPeerUKI), waiting for the passphrase over SSH; its metrics are
// prefixed dropbear-, and x_dropbear-* = theirs / ours (guest clock).
func BenchmarkControlRecovery(b *testing.B) {
	testenv.RequireRoot(b)
	for _, tool := range []string{"qemu-system-x86_64", "swtpm", "mksquashfs", "mkfs.vfat", "mcopy", "mkfs.btrfs", "openssl", "ssh", "ssh-keyscan", "ssh-keygen",
		"mkinitramfs", "cryptsetup", "dropbear", "dropbearkey"} {
		testenv.Tool(b, tool)
	}
	rb := newRecoveryBench(b)
	var ours, peer [5]float64
	n := 0
	for b.Loop() {
		m := rb.bootOnce(b, rb.ours, `initos: control: serving SSH`, `initos: control: volume \S+ unlocked with a key`)
		p := rb.bootOnce(b, rb.peer, `initos-peer: dropbear up`, `initos-peer: key received`)
		for i := range m {
			ours[i] += m[i]
			peer[i] += p[i]
		}
		n++
	}
	for i, name := range []string{"power-on-to-ssh-s", "guest-to-ssh-s", "unlock-to-init-s", "unlock-rtt-s", "status-rtt-s"} {
		b.ReportMetric(ours[i]/float64(n), name)
		b.ReportMetric(peer[i]/float64(n), "dropbear-"+name)
	}
	b.ReportMetric(peer[1]/ours[1], "x_dropbear-guest-to-ssh")
	b.ReportMetric(peer[2]/ours[2], "x_dropbear-unlock-to-init")
	b.ReportMetric(peer[4]/ours[4], "x_dropbear-status-rtt")
}

// recoveryBench is BenchmarkControlRecovery's machine.
type recoveryBench struct {
	bootBench
	vol *bootdisk.Volume
	id  string // the authorized private key
	dir string // short path: ssh's files
}

func newRecoveryBench(b *testing.B) *recoveryBench {
	k, err := vmtest.FindKernel()
	if err != nil {
		testenv.Missing(b, "%v", err)
	}
	dir := b.TempDir()
	rb := &recoveryBench{bootBench: bootBench{k: k}, vol: bootdisk.NewVolume(0, 3, bootUUID, "recovery")}
	rb.dir, err = os.MkdirTemp("", "ibench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(rb.dir) })
	rb.id = filepath.Join(rb.dir, "owner")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", rb.id).CombinedOutput(); err != nil {
		b.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(rb.id + ".pub")
	if err != nil {
		b.Fatal(err)
	}
	sb := bootdisk.Snakeoil(b)
	mods, err := bootdisk.BuildModulesImage(k)
	if err != nil {
		b.Fatal(err)
	}
	cfg := bootconfig.New()
	cfg.ModulesImage, cfg.FailureTimeoutSec = mods.Info, 300
	cfg.Control.AuthorizedKeys = []string{strings.TrimSpace(string(pub))}
	rd, err := bootdisk.Initrd(k, cfg, bootdisk.VMModules)
	if err != nil {
		b.Fatal(err)
	}
	if rb.ours, err = bootdisk.UKI(k.Image, rd, bootCmdline, k.Version, sb); err != nil {
		b.Fatal(err)
	}
	rb.peer = dropbearPeerUKI(b, k, dir, strings.TrimSpace(string(pub)), sb)
	rb.makeDisk(b, dir, rb.vol, []byte("an unused key file for the recovery benchmark"), mods)
	if rb.m, err = vmtest.NewMachine(filepath.Join(dir, "machine"), vmtest.MachineConfig{
		Firmware: vmtest.OVMFSecureBoot(), TPM: true, Disks: []vmtest.Disk{{Path: rb.disk.Path}}}); err != nil {
		b.Fatal(err)
	}
	rb.disk = &bootdisk.Disk{Path: rb.m.DiskPath(0), Parts: rb.disk.Parts}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	plan := rootreport.EnrollPlan{Volumes: []rootreport.EnrollVolume{{Device: "/dev/vda3", Pass: string(rb.vol.Pass), Bind: true}}}
	if res, err := bootdisk.Enroll(ctx, rb.m, rb.disk, 1, k, plan, sb); err != nil {
		if res != nil {
			b.Logf("console:\n%s", res.Console)
		}
		b.Fatal(err)
	}
	empty, err := os.ReadFile(filepath.Join(filepath.Dir(vmtest.OVMF().Vars), "OVMF_VARS_4M.fd"))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(rb.m.VarsPath(), empty, 0o644); err != nil { // Secure Boot off: PCR 7 differs
		b.Fatal(err)
	}
	return rb
}

// bootOnce boots uki, waits for SSH, unlocks, and returns power-on to SSH
// (host), kernel start to SSH (guest), unlock to init (guest) and the
// unlock command's and a status command's wall time (the mean of 3), in
// seconds; upRE and keyRE match the
// console lines of the server listening and of the key's arrival. The
// tokens are left as they were: each boot fails the same way.
func (rb *recoveryBench) bootOnce(b *testing.B, uki []byte, upRE, keyRE string) [5]float64 {
	if err := rb.disk.PutFile(1, "EFI/BOOT/BOOTX64.EFI", uki); err != nil {
		b.Fatal(err)
	}
	port := vmtest.FreePort(b)
	spec := vmtest.BootSpec{QEMUArgs: []string{"-netdev", fmt.Sprintf("user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:22", port),
		"-device", "virtio-net-pci,netdev=net0"}}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var m [5]float64
	var derr error
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		m[0], m[3], m[4], derr = rb.drive(ctx, start, port)
	}()
	res, err := rb.m.Boot(ctx, spec)
	cancel()
	<-done
	if err != nil || derr != nil {
		b.Fatalf("boot: %v; ssh: %v\nconsole:\n%s", err, derr, res.Console)
	}
	r, err := rootreport.Find(res.Console)
	if err != nil {
		b.Fatalf("%v\nconsole:\n%s", err, res.Console)
	}
	serving := guestTime(res.Console, upRE)
	unlocked := guestTime(res.Console, keyRE)
	if serving < 0 || unlocked < 0 {
		b.Fatalf("console lacks the control plane's lines\n%s", res.Console)
	}
	m[1], m[2] = serving, r.Uptime-unlocked
	return m
}

// drive waits for ssh-keyscan's answer, runs status three times (each a
// new connection: TCP, key exchange, authentication, the command), then
// sends the passphrase with OpenSSH; it returns the time to the answer,
// the unlock's wall time and status's mean wall time.
func (rb *recoveryBench) drive(ctx context.Context, start time.Time, port int) (reach, unlock, status float64, err error) {
	p := strconv.Itoa(port)
	for {
		out, _ := exec.CommandContext(ctx, "ssh-keyscan", "-T", "10", "-t", "ecdsa", "-p", p, "127.0.0.1").Output()
		if bytes.Contains(out, []byte("ecdsa-sha2-nistp256")) {
			reach = time.Since(start).Seconds()
			break
		}
		select {
		case <-ctx.Done():
			return 0, 0, 0, fmt.Errorf("no SSH server on port %s", p)
		case <-time.After(250 * time.Millisecond):
		}
	}
	for range 3 {
		d, out, err := rb.ssh(ctx, p, nil, "status")
		if err != nil || !bytes.Contains(out, []byte("stage:")) {
			return 0, 0, 0, fmt.Errorf("ssh status: %v: %s", err, out)
		}
		status += d / 3
	}
	unlock, out, err := rb.ssh(ctx, p, append(bytes.Clone(rb.vol.Pass), '\n'), "unlock")
	if err != nil {
		return 0, 0, 0, fmt.Errorf("ssh unlock: %v: %s", err, out)
	}
	return reach, unlock, status, nil
}

// ssh runs one OpenSSH command and returns its wall time and output.
func (rb *recoveryBench) ssh(ctx context.Context, port string, stdin []byte, verb string) (float64, []byte, error) {
	cmd := exec.CommandContext(ctx, "ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", rb.id,
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-p", port, "-l", "root", "127.0.0.1", verb)
	cmd.Stdin = bytes.NewReader(stdin)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	return time.Since(t0).Seconds(), out, err
}

// guestTime is the kernel timestamp of the first console line matching re.
func guestTime(console []byte, re string) float64 {
	m := regexp.MustCompile(`\[ *([0-9]+\.[0-9]+)\] ` + re).FindSubmatch(console)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}
