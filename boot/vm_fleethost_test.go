//go:build !vmguest

package boot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"initos/control/client"
	"initos/internal/bootdisk"
	"initos/internal/vmtest"
	"initos/update"
	"initos/update/trial"
)

// fleetHost is one machine of the fleet test.
type fleetHost struct {
	name    string
	m       *vmtest.Machine
	disk    *bootdisk.Disk
	key     ssh.Signer // its SSH host key
	port    int        // 127.0.0.1's port forwarded to its port 22
	esps    [2][32]byte
	console *fleetConsole
	done    chan struct{}
	res     *vmtest.Result
	err     error
	logOnce sync.Once
}

// newFleetHost clones TestVMBoot's enrolled machine (disk 0 with the
// enrolled LUKS header, the variable store, the TPM state) and gives it
// a formatted ESP B and a root of its own: fleetinit, the initos CLI, a
// host key, the owner's key.
func (f *vmFixture) newFleetHost(t *testing.T, vm *vmtest.VM, op *fleetOperator, name string) *fleetHost {
	h := &fleetHost{name: name, console: &fleetConsole{ready: make(chan struct{}, 8)}, done: make(chan struct{})}
	var keyPEM []byte
	h.key, keyPEM = newSSHKey(t, name)
	init, err := bootdisk.FleetInit()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := os.ReadFile(op.cli)
	if err != nil {
		t.Fatal(err)
	}
	files := bootdisk.RootFiles(init, map[string][]byte{
		"sbin/initos": cli, "sbin/systemctl": init, "etc/fleet/name": []byte(name),
		"etc/fleet/ssh_host_ed25519_key": keyPEM, "etc/fleet/authorized_keys": ssh.MarshalAuthorizedKey(op.owner.PublicKey()),
	})
	img := filepath.Join(f.dir, "fleet-"+name+".btrfs")
	if err := bootdisk.BuildRoot(context.Background(), []string{img}, vmSmallMiB, bootdisk.RootSpec{Files: files}); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(img)
	fw := *vmtest.OVMFSecureBoot()
	fw.Vars = vm.Machine.VarsPath()
	h.m, err = vmtest.NewMachine(filepath.Join(f.dir, "fleet-"+name), vmtest.MachineConfig{
		Firmware: &fw, TPM: true, Reboots: true, Watchdog: true, Disks: []vmtest.Disk{{Path: f.disks[0].Path}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := copyTPMState(h.m.TPMStateDir(), vm.Machine.TPMStateDir()); err != nil {
		t.Fatal(err)
	}
	h.disk = &bootdisk.Disk{Path: h.m.DiskPath(0), Parts: f.disks[0].Parts}
	if err := h.disk.FormatESP(2, "ESP-B", nil); err != nil {
		t.Fatal(err)
	}
	if err := h.disk.Install(3, f.g0, img); err != nil {
		t.Fatal(err)
	}
	h.esps = espSums(t, h.disk)
	return h
}

// copyTPMState copies the swtpm state files of one machine into another's.
func copyTPMState(dst, src string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (h *fleetHost) addr() string { return "127.0.0.1:" + strconv.Itoa(h.port) }

// start boots the machine in the background, with a NIC on qemu's user
// network (not restricted: the guest reaches the host's 127.0.0.1 at
// 10.0.2.2) and port 22 forwarded from a free port of 127.0.0.1.
func (h *fleetHost) start(ctx context.Context, t *testing.T) {
	h.port = vmtest.FreePort(t)
	args := []string{"-netdev", fmt.Sprintf("user,id=net0,hostfwd=tcp:127.0.0.1:%d-:22", h.port), "-device", "virtio-net-pci,netdev=net0"}
	go func() {
		defer close(h.done)
		h.res, h.err = h.m.Boot(ctx, vmtest.BootSpec{Console: h.console, QEMUArgs: args})
	}()
}

// ready waits for the host's next FLEET-READY line.
func (h *fleetHost) ready(ctx context.Context) error {
	select {
	case <-h.console.ready:
		return nil
	case <-h.done:
		return fmt.Errorf("%s: qemu ended before the host served SSH: %v", h.name, h.err)
	case <-ctx.Done():
		return fmt.Errorf("%s: never served SSH: %v", h.name, ctx.Err())
	}
}

// wait waits for qemu to end and reports, once, how it ended.
func (h *fleetHost) wait(t *testing.T) {
	<-h.done
	h.logOnce.Do(func() {
		if h.err != nil {
			t.Errorf("%s: %v", h.name, h.err)
		}
		if h.res != nil {
			t.Logf("%s: qemu ran %v", h.name, h.res.Elapsed.Round(time.Second))
		}
	})
}

// logConsole logs the end of the host's console (after a failure).
func (h *fleetHost) logConsole(t *testing.T) {
	cmd := ""
	if h.res != nil {
		cmd = h.res.CommandLine()
	}
	t.Logf("%s: qemu: %s\nconsole:\n%s", h.name, cmd, tail([]byte(h.console.String()), 150))
}

// fleetStatus is a host's `initos slot status --json`, parsed and raw.
type fleetStatus struct {
	update.Status
	raw string
}

// statuses asks every host for `initos slot status --json` with one
// `initos ctl --hosts FILE --json` run.
func (op *fleetOperator) statuses(t *testing.T, ctx context.Context, hosts []*fleetHost) []*fleetStatus {
	out, errs, code := op.ctl(t, ctx, "--hosts", op.hostsFile, "--json", "initos", "slot", "status")
	var res []client.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || len(res) != len(hosts) {
		t.Fatalf("initos ctl --hosts --json initos slot status = exit %d, %q (%v) %q", code, out, err, errs)
	}
	sts := make([]*fleetStatus, len(hosts))
	for i, h := range hosts {
		var b bytes.Buffer
		st := &fleetStatus{}
		if res[i].Host != h.addr() || json.Compact(&b, res[i].Answer) != nil || json.Unmarshal(res[i].Answer, &st.Status) != nil {
			t.Fatalf("status of %s: %+v", h.name, res[i])
		}
		st.raw = b.String()
		sts[i] = st
	}
	return sts
}

// rollout runs `initos ctl --hosts FILE upgrade --canary 1 --batch 1 --json`.
func (op *fleetOperator) rollout(t *testing.T, ctx context.Context, ref string) ([]update.HostResult, string, int) {
	out, errs, code := op.ctl(t, ctx, "--hosts", op.hostsFile, "upgrade", "--from", ref, "--canary", "1", "--batch", "1",
		"--poll", "3s", "--trial-timeout", vmTimeout(15*time.Minute).String(), "--json")
	var res []update.HostResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("initos ctl upgrade --json = exit %d, %q (%v) %q", code, out, err, errs)
	}
	t.Logf("initos ctl upgrade: exit %d\n%s%s", code, out, errs)
	return res, errs, code
}

// checkRollout: the canary's trial failed at the initrd's root step, the
// rollout stopped (exit 1), the second host was skipped.
func checkRollout(t *testing.T, res []update.HostResult, stderr string, code int, hosts []*fleetHost) {
	if code != 1 || len(res) != 2 {
		t.Fatalf("initos ctl upgrade = exit %d with %d results, want 1 and 2", code, len(res))
	}
	c, s := res[0], res[1]
	if c.Host != hosts[0].addr() || c.Phase != "canary" || c.State != update.HostFailed || c.From != "a" || c.To != "b" ||
		c.BuildID != fleetBuild || c.Step != "initrd: root" || !strings.Contains(c.Reason, "/sbin/missing") {
		t.Errorf("canary's result = %+v, want slot a -> b of %q failed at \"initrd: root\" naming /sbin/missing", c, fleetBuild)
	}
	if c.Seconds <= 0 {
		t.Errorf("canary's result took %gs, want its time", c.Seconds)
	}
	if s.Host != hosts[1].addr() || s.State != update.HostSkipped || s.To != "" {
		t.Errorf("second host's result = %+v, want skipped", s)
	}
	if !strings.Contains(stderr, "rollout stopped at canary") {
		t.Errorf("initos ctl upgrade stderr = %q, want the rollout stopped at the canary", stderr)
	}
}

// checkCanaryAfter: a new boot of slot a, its default, with the failed
// trial of slot b recorded and the broken build left in slot b.
func checkCanaryAfter(t *testing.T, before, after *fleetStatus) {
	r := after.Trial
	if after.Active != "a" || after.Default != "a" || after.Next != "" || after.OnTrial || after.BootID == before.BootID ||
		r == nil || r.Slot != "b" || r.From != "a" || r.State != trial.Failed || r.BuildID != fleetBuild || r.Step != "initrd: root" {
		t.Errorf("canary after the rollout = %s\nwant a new boot of slot a, the default, with slot b's trial failed at the root step", after.raw)
	}
	for _, s := range after.Slots {
		if s.Slot == "b" && (s.UKI == nil || s.UKI.BuildID != fleetBuild) {
			t.Errorf("canary's slot b = %+v, want the staged %q", s, fleetBuild)
		}
	}
}

// sameStatus: the same boot, slots, entries and record.
func sameStatus(a, b *fleetStatus) bool {
	return a.raw == b.raw && a.BootID != "" && a.Trial == nil && a.Default == "a" && a.Next == ""
}

// checkFleetDisks (after power-off): the second host's ESPs are the
// bytes it booted with; the canary's ESP A too, its ESP B was written.
// The consoles: the canary booted three times (slot a, the trial of b,
// slot a), the second once, and ran no upgrade.
func checkFleetDisks(t *testing.T, hosts []*fleetHost) {
	canary, second := hosts[0], hosts[1]
	if got := espSums(t, canary.disk); got[0] != canary.esps[0] || got[1] == canary.esps[1] {
		t.Errorf("canary's ESPs: A changed %v, B changed %v; want A unchanged, B staged", got[0] != canary.esps[0], got[1] != canary.esps[1])
	}
	if got := espSums(t, second.disk); got != second.esps {
		t.Errorf("second host's ESPs changed (A %v, B %v): it was touched", got[0] != second.esps[0], got[1] != second.esps[1])
	}
	cc, sc := canary.console.String(), second.console.String()
	for _, line := range []string{
		"initos: trial: this boot is the trial of slot b (from slot a)",
		"initos: FAILED: root: ",
		"initos: trial: the trial of slot b failed at root: recorded; rebooting now",
		"FLEET-EXEC canary exit=0 initos upgrade --json --progress=false --from ",
		"FLEET-REBOOT canary: systemctl reboot",
	} {
		if !strings.Contains(cc, line) {
			t.Errorf("canary's console lacks %q", line)
		}
	}
	if n := strings.Count(cc, "FLEET-READY canary"); n != 2 {
		t.Errorf("canary served SSH in %d boots, want 2 (before the upgrade, after the failed trial)", n)
	}
	if n := strings.Count(sc, "FLEET-READY second"); n != 1 || strings.Contains(sc, "this boot is the trial") || strings.Contains(sc, "initos upgrade") {
		t.Errorf("second host: %d boots, a trial or an upgrade on its console; want one boot, neither", n)
	}
	t.Logf("canary's console:\n%s", strings.Join(markedLines(cc, "FLEET-", "initos: trial: ", "initos: FAILED: "), "\n"))
	t.Logf("second host's console:\n%s", strings.Join(markedLines(sc, "FLEET-", "initos: trial: ", "initos: FAILED: "), "\n"))
}

// markedLines returns the lines of a console holding one of the markers,
// from the first marker on.
func markedLines(console string, markers ...string) []string {
	var lines []string
	for _, l := range strings.Split(console, "\n") {
		for _, m := range markers {
			if i := strings.Index(l, m); i >= 0 {
				lines = append(lines, strings.TrimSpace(l[i:]))
				break
			}
		}
	}
	return lines
}
