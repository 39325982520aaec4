//go:build !vmguest

package boot

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"initos/bootconfig"
	"initos/control"
	"initos/internal/bootdisk"
	"initos/internal/bootdisk/report"
	"initos/internal/vmtest"
)

// controlProof is TestVMBoot's control-plane part (issue 15's proof
// through the real initrd): three more boots of the same machine, with a
// UKI whose signed config lists an SSH key (signed by the same PCR key as
// the production UKI, so the enrolled tokens accept it).
//
//  1. PCR 7 changed (Secure Boot off): the unlock fails, the initrd brings
//     the network up and serves SSH. OpenSSH: an unlisted key, a PTY and a
//     shell are refused; status names PCR 7; 20 wrong keys meet the rate
//     limit; the volumes' keys (one each) unlock them, --reseal re-enrolls
//     their tokens and bindings; the root's init runs.
//  2. The same PCR 7: the resealed tokens unseal, the bindings verify, the
//     production UKI boots to the root with no one typing anything.
//  3. Secure Boot back on (PCR 7 changed again): SSH is served with the
//     same TPM host key (pinned in boot 1, found nowhere on the UKI, the
//     initrd, the disks or the variable store); unlock --reseal again.
func (f *vmFixture) controlProof(t *testing.T, vm *vmtest.VM) {
	h := newSSHHost(t)
	cfg := bootconfig.New()
	cfg.BuildID, cfg.FailureTimeoutSec, cfg.ModulesImage = "boot VM test, control plane", 240, f.modules.Info
	cfg.Control = bootconfig.Control{AuthorizedKeys: []string{h.ownerLine}}
	initrd, err := bootdisk.Initrd(f.kernel, cfg, bootdisk.VMModules)
	if err != nil {
		t.Fatal(err)
	}
	uki, err := bootdisk.UKI(f.kernel.Image, initrd, "console=ttyS0 panic=-1 no_timer_check quiet", f.kernel.Version, f.sb)
	if err != nil {
		t.Fatal(err)
	}
	f.setSecondDisk(true)
	f.setVolume(0, f.g0, f.roots["raid1"][0])
	f.setVolume(1, f.g1, f.roots["raid1"][1])
	savedVars, err := os.ReadFile(f.machineVars)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		os.WriteFile(f.machineVars, savedVars, 0o644)
		f.disks[0].PutFile(1, "EFI/BOOT/BOOTX64.EFI", f.uki)
		f.setVolume(0, f.g0, f.roots["raid1"][0]) // the enrolled headers
		f.setVolume(1, f.g1, f.roots["raid1"][1])
	}()
	var reach [2]time.Duration
	t.Run("control: PCR 7 changed, OpenSSH unlock --reseal", func(t *testing.T) {
		f.setVars(filepath.Join(filepath.Dir(vmtest.OVMF().Vars), "OVMF_VARS_4M.fd")) // Secure Boot off
		f.putBootUKI(uki)
		res := h.bootWithSSH(t, vm, func(ctx context.Context, start time.Time) {
			reach[0] = f.driveFirst(t, ctx, start, h)
		})
		f.checkControlBoot(t, res, h, "Secure Boot is off", reach[0])
	})
	t.Run("control: the resealed tokens unlock the next boot", func(t *testing.T) {
		f.putBootUKI(f.uki)
		res := bootVM(t, vm)
		f.checkGoodBoot(t, res)
		for _, v := range []string{f.g0.UUID, f.g1.UUID} {
			if !strings.Contains(string(res.Console), "unlock: volume "+v+": bound to this machine") {
				t.Errorf("console: volume %s not unsealed and bound after the reseal", v)
			}
		}
	})
	t.Run("control: same host key over boots, Secure Boot back on", func(t *testing.T) {
		os.WriteFile(f.machineVars, savedVars, 0o644)
		f.putBootUKI(uki)
		res := h.bootWithSSH(t, vm, func(ctx context.Context, start time.Time) {
			reach[1] = f.driveAgain(t, ctx, start, h)
		})
		f.checkControlBoot(t, res, h, "Secure Boot is on: its keys", reach[1])
		f.checkNoHostKey(t, h.hostKey, uki, initrd)
	})
}

// setVars replaces the machine's UEFI variable store by the file src.
func (f *vmFixture) setVars(src string) {
	b, err := os.ReadFile(src)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(f.machineVars, b, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// putBootUKI makes uki the one ESP A boots.
func (f *vmFixture) putBootUKI(uki []byte) {
	if err := f.disks[0].PutFile(1, "EFI/BOOT/BOOTX64.EFI", uki); err != nil {
		f.t.Fatal(err)
	}
}

// driveFirst is boot 1's operator: reachability, the refusals, status,
// 20 wrong keys, then each volume's key, the second with --reseal.
func (f *vmFixture) driveFirst(t *testing.T, ctx context.Context, start time.Time, h *sshHost) time.Duration {
	key, reach, err := h.waitReachable(ctx, start)
	if err != nil {
		t.Error(err)
		return 0
	}
	if err := h.pin(key); err != nil {
		t.Error(err)
		return reach
	}
	defer f.powerOffOnFailure(t, h)
	refused := []struct {
		name   string
		id     string
		opts   []string
		args   []string
		code   int
		stderr string
	}{
		{"unlisted key", h.other, nil, []string{"status"}, 255, "Permission denied (publickey)"},
		{"PTY", "", []string{"-tt"}, []string{"status"}, 255, "PTY allocation request failed"},
		{"shell", "", nil, nil, 255, "shell request failed"},
		{"shell verb", "", nil, []string{"shell"}, control.ExitUsage, `unknown verb "shell"`},
	}
	for _, c := range refused {
		_, errs, code := h.ssh(ctx, c.id, "", c.opts, c.args...)
		if code != c.code || !strings.Contains(errs, c.stderr) {
			t.Errorf("ssh %s %q = exit %d %q, want %d and %q", c.name, c.args, code, errs, c.code, c.stderr)
		}
	}
	if err := h.startMaster(ctx); err != nil {
		t.Error(err)
		return reach
	}
	f.checkStatus(t, ctx, h, "Secure Boot is off")
	f.wrongKeys(t, ctx, h)
	f.unlockBoth(t, ctx, h)
	return reach
}

// driveAgain is boot 3's operator: the host key is the pinned one, status
// names PCR 7, the keys unlock and reseal.
func (f *vmFixture) driveAgain(t *testing.T, ctx context.Context, start time.Time, h *sshHost) time.Duration {
	key, reach, err := h.waitReachable(ctx, start)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer f.powerOffOnFailure(t, h)
	if key != h.hostKey {
		t.Errorf("host key in the second control boot = %q, want the first's %q", key, h.hostKey)
	}
	if err := h.startMaster(ctx); err != nil { // StrictHostKeyChecking against boot 1's key
		t.Error(err)
		return reach
	}
	f.checkStatus(t, ctx, h, "Secure Boot is on: its keys")
	f.unlockBoth(t, ctx, h)
	return reach
}

// powerOffOnFailure ends a boot whose driver failed at once, instead of
// after the initrd's failure timeout.
func (f *vmFixture) powerOffOnFailure(t *testing.T, h *sshHost) {
	if t.Failed() {
		h.ssh(context.Background(), "", "", nil, "poweroff")
	}
}

// checkStatus: status names PCR 7 with its expected and actual values,
// in text and JSON.
func (f *vmFixture) checkStatus(t *testing.T, ctx context.Context, h *sshHost, why string) {
	out, errs, code := h.ssh(ctx, "", "", nil, "status")
	pcr7 := regexp.MustCompile(`PCR 7 \(sha256\): expected [0-9a-f]{64}, actual [0-9a-f]{64}`)
	if code != 0 || !pcr7.MatchString(out) || !strings.Contains(out, why) || !strings.Contains(out, f.g0.UUID) {
		t.Errorf("ssh status = exit %d\n%s%s\nwant PCR 7 expected/actual, %q and the volume", code, out, errs, why)
	}
	out, _, code = h.ssh(ctx, "", "", nil, "status", "--json")
	var st control.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 || st.Failure == nil || st.Failure.Step != StepUnlock ||
		len(st.Failure.PCRs) == 0 || st.Failure.PCRs[0].Index != 7 || st.Failure.PCRs[0].Expected == st.Failure.PCRs[0].Actual {
		t.Errorf("ssh status --json = exit %d %q (%v), want the unlock failure on PCR 7", code, out, err)
	}
}

// wrongKeys sends 20 wrong keys: the first are answered "wrong key" (3,
// plus one per 10 s the burst refills), the rest "rate limited".
func (f *vmFixture) wrongKeys(t *testing.T, ctx context.Context, h *sshHost) {
	begin := time.Now()
	counts := map[int]int{}
	for i := 0; i < 20; i++ {
		_, errs, code := h.ssh(ctx, "", "wrong key "+strconv.Itoa(i)+"\n", nil, "unlock")
		counts[code]++
		if code == control.ExitRateLimited && !strings.Contains(errs, "rate limited after") {
			t.Errorf("unlock(wrong) rate-limited: stderr %q", errs)
		}
	}
	refills := int(time.Since(begin) / (10 * time.Second))
	wrong, limited := counts[control.ExitWrongKey], counts[control.ExitRateLimited]
	if wrong < 3 || wrong > 3+refills+1 || wrong+limited != 20 {
		t.Errorf("20 wrong keys in %v: exits %v, want 3 (+1 per 10 s) wrong-key answers and the rest rate-limited", time.Since(begin).Round(time.Second), counts)
	}
	t.Logf("20 wrong keys in %v: %d answered wrong, %d rate-limited", time.Since(begin).Round(time.Second), wrong, limited)
	if out, _, _ := h.ssh(ctx, "", "", nil, "status"); !strings.Contains(out, "wrong unlock keys: "+strconv.Itoa(wrong)) {
		t.Errorf("status after the wrong keys lacks %q:\n%s", "wrong unlock keys: "+strconv.Itoa(wrong), out)
	}
}

// unlockBoth sends volume 0's key (it opens that one, the other stays
// locked), then volume 1's with --reseal; an attempt refused by the rate
// limit is repeated once the limit says.
func (f *vmFixture) unlockBoth(t *testing.T, ctx context.Context, h *sshHost) {
	_, errs, code := h.unlockRetrying(ctx, string(f.g0.Pass), "unlock")
	if code != control.ExitFailed || !strings.Contains(errs, "opened "+f.g0.UUID+"; "+f.g1.UUID+" still locked") {
		t.Errorf("unlock (volume 0's key) = exit %d %q, want 1, one opened, one still locked", code, errs)
	}
	out, errs, code := h.unlockRetrying(ctx, string(f.g1.Pass), "unlock", "--reseal")
	if code != 0 || !strings.Contains(out, "the boot continues") {
		t.Errorf("unlock --reseal (volume 1's key) = exit %d %q %q, want 0 and the boot continuing", code, out, errs)
	}
	for _, v := range []string{f.g0.UUID, f.g1.UUID} {
		if !regexp.MustCompile(`resealed: volume ` + v + `: new TPM token \d+ on keyslot \d+, binding token \d+ renewed`).MatchString(out) {
			t.Errorf("unlock --reseal output lacks volume %s resealed and rebound:\n%s", v, out)
		}
	}
}

var rateWait = regexp.MustCompile(`next attempt in ([0-9.]+[a-zµ]+)`)

func (h *sshHost) unlockRetrying(ctx context.Context, key string, args ...string) (string, string, int) {
	for try := 0; ; try++ {
		out, errs, code := h.ssh(ctx, "", key+"\n", nil, args...)
		m := rateWait.FindStringSubmatch(errs)
		if code != control.ExitRateLimited || m == nil || try == 5 {
			return out, errs, code
		}
		d, _ := time.ParseDuration(m[1])
		time.Sleep(d + 500*time.Millisecond)
	}
}

// checkControlBoot: the boot failed at unlock naming PCR 7, served SSH,
// was unlocked from it and reached the genuine root with both volumes.
// It logs the two times issue 15 benchmarks.
func (f *vmFixture) checkControlBoot(t *testing.T, res *vmtest.Result, h *sshHost, why string, reach time.Duration) {
	console := string(res.Console)
	if !regexp.MustCompile(`initos: FAILED: unlock: volume ` + f.g0.UUID + ` \(/dev/vda3\): .*PCR 7 mismatch: .*\(` + regexp.QuoteMeta(why)).MatchString(console) {
		t.Errorf("console lacks the PCR 7 failure (%s)", why)
	}
	r, err := report.Find(res.Console)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "genuine" || r.BtrfsDevices != 2 || len(r.Errors) > 0 {
		t.Errorf("root %q with %d btrfs devices, errors %q: want the genuine raid1", r.Name, r.BtrfsDevices, r.Errors)
	}
	if want := expectedPCR15(t, f.g0, f.g1); r.PCRs[15] != want {
		t.Errorf("PCR 15 in the root = %s, want %s (both volumes measured after the manual unlock)", r.PCRs[15], want)
	}
	fp, _, err := fingerprint(h.hostKey)
	if err != nil {
		t.Fatal(err)
	}
	serving := kernelTime(console, `initos: control: serving SSH on port 22 \(host key `+regexp.QuoteMeta(fp)+`\)`)
	unlocked := kernelTime(console, `initos: control: volume `+f.g1.UUID+` unlocked with a key from the control plane`)
	if serving < 0 || unlocked < 0 {
		t.Fatalf("console lacks the control plane's serving line with host key %s (%v) or the unlock line (%v)", fp, serving, unlocked)
	}
	t.Logf("power-on to SSH reachable: %v on the host (qemu start to ssh-keyscan's answer), the server up %.1fs after the kernel started; unlock to the root's init: %.1fs (guest clock)",
		reach.Round(100*time.Millisecond), serving, r.Uptime-unlocked)
}

// kernelTime returns the kernel timestamp of the first console line
// matching re, or -1.
func kernelTime(console, re string) float64 {
	m := regexp.MustCompile(`\[ *([0-9]+\.[0-9]+)\] ` + re).FindStringSubmatch(console)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// checkNoHostKey: the TPM host key is nowhere in the UKI, the initrd
// (decompressed), the disks or the variable store: neither its public
// key (SSH wire form, base64, the curve point's X) nor any private key
// blob (PEM, OpenSSH).
func (f *vmFixture) checkNoHostKey(t *testing.T, hostKey string, uki, initrd []byte) {
	_, pk, err := fingerprint(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	needles := map[string][]byte{"SSH public key": pk.Marshal(), "base64 public key": []byte(strings.Fields(hostKey)[1]),
		"OpenSSH private key": []byte("openssh-key-v1"), "PEM private key": []byte("PRIVATE KEY-----")}
	if x := ecPointX(pk); x != nil {
		needles["the public point's X"] = x
	}
	raw, err := zstdDecode(initrd)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"the UKI": uki, "the initrd": raw}
	for i := range f.disks {
		b, err := os.ReadFile(f.disks[i].Path)
		if err != nil {
			t.Fatal(err)
		}
		files["disk "+strconv.Itoa(i)] = b
	}
	if b, err := os.ReadFile(f.machineVars); err == nil {
		files["the UEFI variable store"] = b
	}
	for fname, b := range files {
		for nname, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("%s holds the host key's %s", fname, nname)
			}
		}
	}
}
