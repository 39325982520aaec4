//go:build !vmguest

package boot

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"golang.org/x/crypto/ssh"

	"initos/bootconfig"
	"initos/control/client"
	"initos/internal/bootdisk"
	"initos/internal/vmtest"
	"initos/update/trial"
)

// fleetBuild is the build id of the broken upgrade the fleet test publishes.
const fleetBuild = "fleet broken"

// The fleet (TestVMBoot, "fleet": issue 16's fleet proof) rolls a broken
// upgrade out over two hosts with the initos CLI as the operator, from
// go-containerregistry's in-process registry on 127.0.0.1 (the guests
// reach it through qemu's user network, at the gateway 10.0.2.2).
//
// The hosts are two clones of TestVMBoot's enrolled machine (disk 0, the
// variable store, the TPM state), each with its own root: fleetinit, the
// initos CLI, its own SSH host key and the owner's key, served on a port
// forwarded from 127.0.0.1. They boot at once (OVMF Secure Boot, swtpm,
// guest reboots through the firmware, i6300esb). The published artifact
// is a UKI whose signed command line names a missing init. `initos ctl
// --hosts FILE upgrade --canary 1 --batch 1 --json`: the canary stages
// slot b, reboots into its trial, the initrd's root step fails and records
// it, the firmware falls back to slot a; ctl reports the canary's failed
// trial and stops. The second host is never touched: its slot status is
// the same before and after, its boot id too, it ran no upgrade, and its
// ESPs are byte for byte those it booted with (the canary's ESP B changed).
//
// prepareFleet makes the artifacts and the clones (TestVMBoot calls it
// before the A/B run, which raises the TPM minimum above the production
// UKI's version); run boots them (after the A/B run, so that the fleet
// takes no time from it), unless -timeout leaves too little.
func (f *vmFixture) prepareFleet(t *testing.T, vm *vmtest.VM) *fleetRun {
	begin := time.Now()
	op := newFleetOperator(t, f.dir)
	r := &fleetRun{op: op, ref: op.publish(t, f, f.fleetUKI(t))}
	r.hosts = []*fleetHost{f.newFleetHost(t, vm, op, "canary"), f.newFleetHost(t, vm, op, "second")}
	t.Logf("fleet: artifacts published, two machines cloned in %v", time.Since(begin).Round(time.Second))
	return r
}

// fleetRun is the prepared fleet.
type fleetRun struct {
	op    *fleetOperator
	ref   string
	hosts []*fleetHost
}

func (r *fleetRun) run(t *testing.T) {
	if d, ok := t.Deadline(); ok && time.Until(d) < 12*time.Minute {
		t.Skipf("-timeout leaves %v, too little for the fleet's two VMs (3-10 minutes): run with -timeout 40m (make test)", time.Until(d).Round(time.Minute))
	}
	begin := time.Now()
	op, ref, hosts := r.op, r.ref, r.hosts
	ctx, cancel := context.WithTimeout(context.Background(), vmTimeout(30*time.Minute))
	defer cancel()
	for _, h := range hosts {
		h.start(ctx, t)
	}
	defer func() {
		if t.Failed() {
			op.ctl(t, context.Background(), "--hosts", op.hostsFile, "poweroff")
		}
		cancel() // a qemu still running stops now
		for _, h := range hosts {
			h.wait(t)
			if t.Failed() {
				h.logConsole(t)
			}
			os.RemoveAll(h.m.Dir) // 240 MiB of disk each, not kept for the A/B run
		}
	}()
	for _, h := range hosts {
		if err := h.ready(ctx); err != nil {
			t.Fatal(err)
		}
		op.addHost(t, h)
	}
	t.Logf("both hosts up and serving SSH %v after the test started", time.Since(begin).Round(time.Second))
	before := op.statuses(t, ctx, hosts)
	if st := before[0]; st.Active != "a" || st.Default != "a" || st.Trial != nil {
		t.Fatalf("canary before the rollout: active %q, default %q, trial %+v; want slot a, no trial", st.Active, st.Default, st.Trial)
	}
	rollout := time.Now()
	res, stderr, code := op.rollout(t, ctx, ref)
	t.Logf("initos ctl upgrade (canary staged, trial failed, back on slot a, verdict) took %v", time.Since(rollout).Round(time.Second))
	checkRollout(t, res, stderr, code, hosts)
	after := op.statuses(t, ctx, hosts)
	checkCanaryAfter(t, before[0], after[0])
	if !sameStatus(before[1], after[1]) {
		t.Errorf("second host's slot status changed:\nbefore %s\nafter  %s", before[1].raw, after[1].raw)
	}
	if _, errs, code := op.ctl(t, ctx, "--hosts", op.hostsFile, "poweroff"); code != 0 {
		t.Errorf("initos ctl --hosts poweroff = exit %d %q", code, errs)
	}
	for _, h := range hosts {
		h.wait(t)
	}
	checkFleetDisks(t, hosts)
	t.Logf("fleet: %v in all (boots, rollout, checks)", time.Since(begin).Round(time.Second))
}

// fleetUKI is the broken upgrade: a signed UKI of security version 1
// whose signed command line names an init the root does not have.
func (f *vmFixture) fleetUKI(t *testing.T) []byte {
	cfg := bootconfig.New()
	cfg.BuildID, cfg.FailureTimeoutSec, cfg.ModulesImage, cfg.SecurityVersion = fleetBuild, 1, f.modules.Info, 1
	cfg.Watchdog = bootconfig.Watchdog{Device: trial.DefaultWatchdog, TimeoutSec: 180}
	rd, err := bootdisk.Initrd(f.kernel, cfg, bootdisk.VMModules)
	if err != nil {
		t.Fatal(err)
	}
	uki, err := bootdisk.UKI(f.kernel.Image, rd, "console=ttyS0 panic=-1 no_timer_check quiet init=/sbin/missing", f.kernel.Version, f.sb)
	if err != nil {
		t.Fatal(err)
	}
	return uki
}

// fleetOperator is the owner's side: the initos CLI, the owner's SSH key,
// known_hosts, the hosts file and the registry.
type fleetOperator struct {
	dir, cli, identity, knownHosts, hostsFile string
	owner                                     ssh.Signer
	registry                                  *httptest.Server
}

func newFleetOperator(t *testing.T, dir string) *fleetOperator {
	op := &fleetOperator{dir: filepath.Join(dir, "fleet")}
	op.cli, op.identity = filepath.Join(op.dir, "initos"), filepath.Join(op.dir, "owner")
	op.knownHosts, op.hostsFile = filepath.Join(op.dir, "known_hosts"), filepath.Join(op.dir, "hosts")
	if err := os.MkdirAll(op.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cli, err := bootdisk.Initos()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(op.cli, cli, 0o755); err != nil {
		t.Fatal(err)
	}
	var key []byte
	op.owner, key = newSSHKey(t, "owner")
	if err := os.WriteFile(op.identity, key, 0o600); err != nil {
		t.Fatal(err)
	}
	op.registry = httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(op.registry.Close)
	return op
}

// newSSHKey returns an ed25519 key and its OpenSSH private key file.
func newSSHKey(t *testing.T, comment string) (ssh.Signer, []byte) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, pem.EncodeToMemory(blk)
}

// publish pushes the UKI and the modules image with `initos publish` to
// the registry (on 127.0.0.1) and returns the reference as the guests
// see it (the gateway 10.0.2.2 is the host's 127.0.0.1).
func (op *fleetOperator) publish(t *testing.T, f *vmFixture, uki []byte) string {
	ukiPath, modPath := filepath.Join(op.dir, "broken.efi"), filepath.Join(op.dir, path.Base(f.modules.Info.File))
	if os.WriteFile(ukiPath, uki, 0o644) != nil || os.WriteFile(modPath, f.modules.Data, 0o644) != nil {
		t.Fatal("write the artifacts")
	}
	u, err := url.Parse(op.registry.URL)
	if err != nil {
		t.Fatal(err)
	}
	out, errs, code := op.run(t, context.Background(), "publish", "--uki", ukiPath, "--modules", modPath, "--json", u.Host+"/fleet/boot:v2")
	if code != 0 || !strings.Contains(out, "sha256:") {
		t.Fatalf("initos publish = exit %d %q %q", code, out, errs)
	}
	return vmtest.GatewayIP + ":" + u.Port() + "/fleet/boot:v2"
}

// run runs the initos CLI; it returns stdout, stderr and the exit status.
func (op *fleetOperator) run(t *testing.T, ctx context.Context, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, op.cli, args...)
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Errorf("initos %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errs.String(), code
}

// ctl runs `initos ctl` with the owner's key and known_hosts.
func (op *fleetOperator) ctl(t *testing.T, ctx context.Context, args ...string) (string, string, int) {
	return op.run(t, ctx, append([]string{"ctl", "--identity", op.identity, "--known-hosts", op.knownHosts}, args...)...)
}

// addHost pins h's host key and appends it to the hosts file.
func (op *fleetOperator) addHost(t *testing.T, h *fleetHost) {
	if err := client.AddKnownHost(op.knownHosts, []string{h.addr()}, h.key.PublicKey()); err != nil {
		t.Fatal(err)
	}
	fh, err := os.OpenFile(op.hostsFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	fmt.Fprintln(fh, h.addr())
}

// espSums hashes the disk's two ESPs (partitions 1 and 2).
func espSums(t *testing.T, d *bootdisk.Disk) [2][32]byte {
	var sums [2][32]byte
	for i := range sums {
		b, err := bootdisk.ReadRegion(d.Path, d.Parts[i].Start, d.Parts[i].MiB<<20)
		if err != nil {
			t.Fatal(err)
		}
		sums[i] = sha256.Sum256(b)
	}
	return sums
}

// fleetConsole collects a host's console and signals its FLEET-READY lines.
type fleetConsole struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	next  int           // where the search for the next marker starts
	ready chan struct{} // one token per FLEET-READY line
}

var readyMarker = []byte("FLEET-READY ")

func (c *fleetConsole) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	for {
		i := bytes.Index(c.buf.Bytes()[c.next:], readyMarker)
		if i < 0 {
			c.next = max(c.next, c.buf.Len()-len(readyMarker)+1)
			return len(p), nil
		}
		c.next += i + len(readyMarker)
		select {
		case c.ready <- struct{}{}:
		default:
		}
	}
}

func (c *fleetConsole) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
