package control

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"initos/internal/testenv"
	"initos/internal/vmtest"
)

// TestVM runs the server in a VM (virtio-net, DHCP from qemu's user net,
// then a static address) and drives it from the host with OpenSSH's client
// through a port forwarded from 127.0.0.1.
func TestVM(t *testing.T) {
	testenv.Tool(t, "ssh")
	dir := t.TempDir()
	id, line := writeKey(t, dir, "owner", "")
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(k, "vm host")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "host_key"), pem.EncodeToMemory(blk), 0o600)
	os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(line+"\n"), 0o644)
	hostPub, _ := ssh.NewPublicKey(&k.PublicKey)
	port := vmtest.FreePort(t)
	vm := vmtest.New(t, vmtest.Config{
		Net: &vmtest.Net{Forward: []vmtest.Forward{{Host: port, Guest: 22}}},
		Files: map[string]string{
			guestHostKeyPath:        filepath.Join(dir, "host_key"),
			guestAuthorizedKeysPath: filepath.Join(dir, "authorized_keys"),
		},
	})
	o := newOpenSSH(t, "127.0.0.1:"+strconv.Itoa(port), hostPub)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, phase := range []string{"dhcp", "static"} {
			if !waitStatus(t, o, id, phase, stop) {
				return
			}
			if _, errs, code := o.run(t, "", []string{id}, o.host, "poweroff"); code != 0 {
				t.Errorf("%s: ssh poweroff: exit %d, %s", phase, code, errs)
				return
			}
		}
	}()
	vm.Run(t, "")
	close(stop)
	<-done
}

// Guest paths of the files TestVM ships (the guest test reads them).
const (
	guestHostKeyPath        = "/vmtest/ctl/host_key"
	guestAuthorizedKeysPath = "/vmtest/ctl/authorized_keys"
)

// waitStatus retries ssh status until the guest's server answers (it
// first boots and brings the network up), the VM ends, or 5 minutes pass.
func waitStatus(t *testing.T, o *openssh, id, phase string, stop chan struct{}) bool {
	start := time.Now()
	var errs string
	for time.Since(start) < 5*time.Minute {
		out, e, code := o.run(t, "", []string{id}, "-o", "ConnectTimeout=5", o.host, "status")
		if code == 0 {
			if !strings.Contains(out, "PCR 7 (sha256): expected aa11, actual bb22") {
				t.Errorf("%s: ssh status = %q, want the PCR 7 mismatch", phase, out)
			}
			t.Logf("%s: ssh status answered %v after the first try", phase, time.Since(start).Round(time.Millisecond))
			return true
		}
		errs = e
		select {
		case <-stop:
			t.Errorf("%s: the VM ended before ssh status answered (last: %s)", phase, errs)
			return false
		case <-time.After(time.Second):
		}
	}
	t.Errorf("%s: ssh status never answered: %s", phase, errs)
	return false
}
