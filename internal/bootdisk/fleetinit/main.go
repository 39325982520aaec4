// Command fleetinit is the /sbin/init of the hosts of boot's fleet test
// (TestVMBoot, "fleet"): a booted InitOS host as `initos ctl upgrade`
// reaches one. It plays the parts that systemd and OpenSSH's sshd play on
// a real host, and nothing more:
//
//   - on the first boot, the installer's boot entries ("InitOS A" first in
//     BootOrder, "InitOS B" after it);
//   - on every boot, `initos bless` (the bless unit of docs/update.md);
//   - the network by DHCP (qemu's user network);
//   - an SSH server on port 22 (golang.org/x/crypto/ssh) with the host key
//     and the owner's authorized key of /etc/fleet, which runs `initos
//     ARGS` (/sbin/initos) for exec requests, and "poweroff";
//   - `systemctl reboot` (this binary, called as systemctl, with
//     /run/systemd/system present so that `initos upgrade` uses it): a
//     clean shutdown, as systemd's: the SSH sessions end first (the
//     operator gets the command's output and exit status), then sync and
//     reboot(2).
//
// Console lines for the test: FLEET-READY NAME BOOT_ID once the server
// listens, FLEET-EXEC NAME exit=N COMMAND for each command, FLEET-ERROR.
package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"initos/control"
	"initos/update"
)

// Files of the host's identity, written into the root by the test.
const (
	nameFile     = "/etc/fleet/name"
	hostKeyFile  = "/etc/fleet/ssh_host_ed25519_key"
	authKeysFile = "/etc/fleet/authorized_keys"
	initosPath   = "/sbin/initos"
)

func main() {
	if filepath.Base(os.Args[0]) == "systemctl" {
		os.Exit(systemctl(os.Args[1:]))
	}
	os.Setenv("PATH", "/sbin:/usr/sbin:/bin:/usr/bin")
	os.Setenv("HOME", "/")
	name, _ := os.ReadFile(nameFile)
	h := &host{name: strings.TrimSpace(string(name)), shutdown: make(chan int, 1)}
	signal.Notify(h.rebootReq(), unix.SIGUSR1)
	if err := h.setup(); err != nil {
		h.logf("FLEET-ERROR %v", err)
		finish(unix.LINUX_REBOOT_CMD_POWER_OFF)
	}
	cmd := <-h.shutdown
	h.drain(10 * time.Second)
	finish(cmd)
}

// systemctl implements `systemctl reboot`: it asks process 1 for a clean
// reboot (SIGUSR1) and returns, as systemd's does.
func systemctl(args []string) int {
	if len(args) != 1 || args[0] != "reboot" {
		fmt.Fprintf(os.Stderr, "systemctl: only \"reboot\" here, not %q\n", args)
		return 1
	}
	if err := unix.Kill(1, unix.SIGUSR1); err != nil {
		fmt.Fprintf(os.Stderr, "systemctl: %v\n", err)
		return 1
	}
	return 0
}

// host is the running host: its name, SSH server and sessions.
type host struct {
	name     string
	mu       sync.Mutex
	conns    int // open SSH connections
	shutdown chan int
}

func (h *host) logf(format string, args ...any) {
	fmt.Printf(format+"\n", args...)
}

// rebootReq forwards SIGUSR1 (systemctl reboot) as a reboot request.
func (h *host) rebootReq() chan os.Signal {
	c := make(chan os.Signal, 1)
	go func() {
		<-c
		h.logf("FLEET-REBOOT %s: systemctl reboot", h.name)
		h.shutdown <- unix.LINUX_REBOOT_CMD_RESTART
	}()
	return c
}

// setup does the boot's work and starts the SSH server.
func (h *host) setup() error {
	if err := os.MkdirAll("/run/systemd/system", 0o755); err != nil {
		return err
	}
	if err := ensureEntries(); err != nil {
		return fmt.Errorf("boot entries: %w", err)
	}
	out, err := exec.Command(initosPath, "bless", "--json").CombinedOutput()
	h.logf("FLEET-BLESS %s %v %s", h.name, err, bytes.Join(bytes.Fields(out), []byte(" ")))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := control.BringUp(ctx, control.NetConfig{Mode: "dhcp"}, nil); err != nil {
		return err
	}
	cfg, err := h.serverConfig()
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", ":22")
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go h.serve(c, cfg)
		}
	}()
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	h.logf("FLEET-READY %s %s", h.name, strings.TrimSpace(string(boot)))
	return nil
}

// ensureEntries does what the installer does for the firmware when no
// InitOS slot is in BootOrder yet: entries "InitOS A" and "InitOS B", A
// first.
func ensureEntries() error {
	sys, err := update.Discover(update.Paths{})
	if err != nil {
		return err
	}
	e, err := sys.ReadEntries()
	if err != nil {
		return err
	}
	if e.DefaultSlot() != "" {
		return nil
	}
	return sys.EnsureEntries()
}

// serverConfig accepts the authorized keys only, with the host key.
func (h *host) serverConfig() (*ssh.ServerConfig, error) {
	pem, err := os.ReadFile(hostKeyFile)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", hostKeyFile, err)
	}
	lines, err := os.ReadFile(authKeysFile)
	if err != nil {
		return nil, err
	}
	allowed := map[string]bool{}
	for rest := lines; len(bytes.TrimSpace(rest)) > 0; {
		k, _, _, r, err := ssh.ParseAuthorizedKey(rest)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", authKeysFile, err)
		}
		allowed[string(k.Marshal())], rest = true, r
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if !allowed[string(k.Marshal())] {
			return nil, fmt.Errorf("key not authorized")
		}
		return &ssh.Permissions{}, nil
	}}
	cfg.AddHostKey(signer)
	return cfg, nil
}

// finish syncs and reboots or powers off (process 1 never exits).
func finish(cmd int) {
	unix.Sync()
	unix.Reboot(cmd)
	for {
		time.Sleep(time.Hour)
	}
}
