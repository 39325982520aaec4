//go:build !vmguest

package boot

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/crypto/ssh"

	"initos/internal/testenv"
	"initos/internal/vmtest"
)

// sshHost drives the initrd's control plane with OpenSSH's client (the C
// oracle) through a port qemu forwards from 127.0.0.1 to the guest's 22.
type sshHost struct {
	dir        string // short (a unix socket lives here): keys, known_hosts, the master's socket
	owner      string // the authorized key (private key file)
	ownerLine  string // its authorized_keys line, for the signed initrd config
	other      string // a key the config does not list
	knownHosts string // the pinned host key, under hostAlias
	hostKey    string // "ecdsa-sha2-nistp256 AAAA…", learned in the first control boot
	port       int
	master     *exec.Cmd // ssh -M, one connection shared by the verbs of a boot
}

// hostAlias names the VM in known_hosts whatever its forwarded port.
const hostAlias = "initos-vm"

func newSSHHost(t *testing.T) *sshHost {
	for _, tool := range []string{"ssh", "ssh-keygen", "ssh-keyscan"} {
		testenv.Tool(t, tool)
	}
	dir, err := os.MkdirTemp("", "ictl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	h := &sshHost{dir: dir, owner: filepath.Join(dir, "owner"), other: filepath.Join(dir, "other"), knownHosts: filepath.Join(dir, "known_hosts")}
	for _, k := range []string{h.owner, h.other} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", filepath.Base(k), "-f", k).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	pub, err := os.ReadFile(h.owner + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	h.ownerLine = strings.TrimSpace(string(pub))
	return h
}

// netArgs gives the machine, for one boot, a NIC on qemu's user network
// with a fresh host port forwarded to the guest's port 22.
func (h *sshHost) netArgs(t *testing.T) []string {
	h.port = vmtest.FreePort(t)
	return []string{"-netdev", fmt.Sprintf("user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:22", h.port),
		"-device", "virtio-net-pci,netdev=net0"}
}

// ssh runs OpenSSH's client with identity id (the owner's when ""), host
// keys checked strictly against the pinned one, through the master when
// it runs; it returns stdout, stderr and the exit status.
func (h *sshHost) ssh(ctx context.Context, id, stdin string, opts []string, args ...string) (string, string, int) {
	if id == "" {
		id = h.owner
	}
	argv := []string{"-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", id,
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + h.knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "HostKeyAlias=" + hostAlias, "-o", "ConnectTimeout=60", "-o", "ControlPath=" + h.socket(), "-o", "ControlMaster=no",
		"-p", strconv.Itoa(h.port), "-l", "root"}
	argv = append(append(argv, opts...), "127.0.0.1")
	cmd := exec.CommandContext(ctx, "ssh", append(argv, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errs.WriteString(err.Error())
	}
	return out.String(), errs.String(), code
}

func (h *sshHost) socket() string { return filepath.Join(h.dir, "cm") }

// startMaster opens the connection the verbs of this boot share (so that
// 20 unlock attempts cost one key exchange, not 20 under TCG).
func (h *sshHost) startMaster(ctx context.Context) error {
	os.Remove(h.socket())
	argv := []string{"-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", h.owner,
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + h.knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "HostKeyAlias=" + hostAlias, "-o", "ConnectTimeout=60", "-o", "ControlPath=" + h.socket(),
		"-M", "-N", "-p", strconv.Itoa(h.port), "-l", "root", "127.0.0.1"}
	h.master = exec.Command("ssh", argv...)
	var errs bytes.Buffer
	h.master.Stderr = &errs
	if err := h.master.Start(); err != nil {
		return err
	}
	for deadline := time.Now().Add(vmTimeout(2 * time.Minute)); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(200 * time.Millisecond) {
		if _, err := os.Stat(h.socket()); err == nil {
			return nil
		}
	}
	return fmt.Errorf("ssh -M: no control socket: %s", errs.String())
}

// stopMaster ends the master started by startMaster (if it still runs).
func (h *sshHost) stopMaster() {
	if h.master != nil {
		h.master.Process.Kill()
		h.master.Wait()
		h.master = nil
	}
}

// keyscan returns the server's ECDSA host key ("ecdsa-sha2-nistp256
// AAAA…") as ssh-keyscan gets it.
func (h *sshHost) keyscan(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "ssh-keyscan", "-T", "10", "-t", "ecdsa", "-p", strconv.Itoa(h.port), "127.0.0.1").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 3 && strings.HasPrefix(f[1], "ecdsa-") {
			return f[1] + " " + f[2], nil
		}
	}
	return "", fmt.Errorf("ssh-keyscan: no host key (%v)", err)
}

// waitReachable polls until the server answers with its host key and
// returns it, with the time since start.
func (h *sshHost) waitReachable(ctx context.Context, start time.Time) (string, time.Duration, error) {
	for {
		key, err := h.keyscan(ctx)
		if err == nil {
			return key, time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return "", 0, fmt.Errorf("the control plane never answered on 127.0.0.1:%d: %v", h.port, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// pin writes the learned host key as the only known host.
func (h *sshHost) pin(key string) error {
	h.hostKey = key
	return os.WriteFile(h.knownHosts, []byte(hostAlias+" "+key+"\n"), 0o600)
}

// fingerprint is the SHA-256 fingerprint of an authorized_keys-format key.
func fingerprint(key string) (string, ssh.PublicKey, error) {
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key))
	if err != nil {
		return "", nil, err
	}
	return ssh.FingerprintSHA256(pk), pk, nil
}

// ecPointX is the X coordinate of an ECDSA key (as the TPM's public area
// holds it), or nil.
func ecPointX(pk ssh.PublicKey) []byte {
	cpk, ok := pk.(ssh.CryptoPublicKey)
	if !ok {
		return nil
	}
	ec, ok := cpk.CryptoPublicKey().(*ecdsa.PublicKey)
	if !ok {
		return nil
	}
	e, err := ec.ECDH()
	if err != nil {
		return nil
	}
	b := e.Bytes() // 0x04 || X || Y
	return b[1 : 1+(len(b)-1)/2]
}

func zstdDecode(b []byte) ([]byte, error) {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.DecodeAll(b, nil)
}

// bootWithSSH boots the machine once with the NIC, while drive runs
// against its control plane; it returns when both ended. drive powers
// the machine off through the control plane when it gives up, so that a
// failure does not wait for the initrd's failure timeout.
func (h *sshHost) bootWithSSH(t *testing.T, vm *vmtest.VM, drive func(ctx context.Context, start time.Time)) *vmtest.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), vmTimeout(8*time.Minute))
	defer cancel()
	spec := vmtest.BootSpec{QEMUArgs: h.netArgs(t)}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer h.stopMaster()
		drive(ctx, start)
	}()
	res, err := vm.Machine.Boot(ctx, spec)
	cancel() // a drive still waiting stops now
	<-done
	t.Cleanup(func() {
		if t.Failed() && res != nil {
			t.Logf("qemu: %s\nconsole:\n%s", res.CommandLine(), tail(res.Console, 100))
		}
	})
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	t.Logf("boot took %v", res.Elapsed.Round(time.Second))
	return res
}
