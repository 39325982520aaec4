package vmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"initos/internal/testenv"
	"initos/internal/vmtest/plan"
	"initos/kmod"
)

// VM is a harness Machine prepared for one host test: kernel found, disks
// copied, firmware vars and TPM state kept in a per-test directory. Each
// call of its Run method is one boot, so several calls are a multi-boot
// scenario on the same disks, variables and TPM state.
type VM struct {
	Machine *Machine // the machine, to inspect or modify state between boots

	cfg    Config
	kernel Kernel
	pkgDir string
	dir    string
	boots  int
}

// Run boots a VM for cfg, runs the guest tests of the package and reports
// each of them as a subtest of t. In the guest it does nothing but skip:
// VMs do not nest.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	if InGuest() {
		t.Skip("not in VM: vmtest.Run boots VMs from the host")
	}
	New(t, cfg).Run(t, cfg.Run)
}

// New prepares a VM for cfg without booting it. It skips t when qemu or the
// kernel is missing on a developer machine (and fails it in CI).
func New(t testing.TB, cfg Config) *VM {
	t.Helper()
	if InGuest() {
		t.Skip("not in VM: vmtest.New boots VMs from the host")
	}
	if err := checkArch(cfg.Arch); err != nil {
		t.Fatal(err)
	}
	testenv.Tool(t, qemuName(cfg.Arch))
	if cfg.TPM {
		testenv.Tool(t, "swtpm")
	}
	k, err := FindKernelArch(cfg.Arch)
	if err != nil {
		if testenv.InCI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	cfg = cfg.withDefaults()
	vm := &VM{cfg: cfg, kernel: k, dir: workDir(t)}
	if vm.pkgDir, err = filepath.Abs(cfg.Pkg); err != nil {
		t.Fatal(err)
	}
	vm.Machine, err = NewMachine(filepath.Join(vm.dir, "machine"), MachineConfig{
		MemoryMB: cfg.MemoryMB, Disks: cfg.Disks, TPM: cfg.TPM, Firmware: cfg.Firmware, Net: cfg.Net,
		Arch: cfg.Arch, Watchdog: cfg.Watchdog,
	})
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// workDir returns a per-test directory, kept if INITOS_VMTEST_KEEP=1.
func workDir(t testing.TB) string {
	if os.Getenv(envKeep) != "1" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("", "vmtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("vmtest: keeping work directory %s", dir)
	return dir
}

// Run boots the VM once and runs the guest tests matching the -test.run
// regexp run (empty: Config.Run or, failing that, every guest test of the
// package), reporting each as a subtest of t.
func (vm *VM) Run(t *testing.T, run string) {
	t.Helper()
	vm.RunBoot(t, run, nil)
}

// BootFunc makes the BootSpec of one boot from the harness's parts: the
// kernel (bzImage), the initramfs holding the runner and the tests, and
// the kernel command line. A tier 3 test can, for instance, build a signed
// UKI from them onto the machine's ESP disk and return a firmware boot.
// Whatever boots, the runner must run as /init for results to come back.
type BootFunc func(kernel, initrd, cmdline string) (BootSpec, error)

// RunBoot is Run with the boot made by boot (nil: a direct kernel boot).
func (vm *VM) RunBoot(t *testing.T, run string, boot BootFunc) {
	t.Helper()
	vm.runBoot(t, run, boot, false)
}

func (vm *VM) runBoot(t *testing.T, run string, boot BootFunc, cut bool) {
	t.Helper()
	res, err, cw := vm.boot(t, run, boot, cut)
	if cut {
		vm.reportCut(t, res, err, cw)
		return
	}
	vm.report(t, res, err, cw)
}

// boot makes one boot of the VM running the guest tests matching run.
func (vm *VM) boot(t testing.TB, run string, boot BootFunc, cut bool) (*Result, error, *consoleWatch) {
	t.Helper()
	vm.boots++
	bootDir := filepath.Join(vm.dir, fmt.Sprintf("run%d", vm.boots))
	if err := os.MkdirAll(bootDir, 0o755); err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(bootDir, "initrd.img")
	if err := vm.writeInitrd(t, initrd, run); err != nil {
		t.Fatal(err)
	}
	spec := BootSpec{Kernel: vm.bootKernel(t), Initrd: initrd, Cmdline: vm.cmdline()}
	if boot != nil {
		var err error
		if spec, err = boot(vm.kernel.Image, initrd, spec.Cmdline); err != nil {
			t.Fatalf("vmtest: make the boot: %v", err)
		}
	}
	ctx, cancel := vm.context(t)
	defer cancel()
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	cw := &consoleWatch{t: t, verbose: os.Getenv(envVerbose) == "1", onExit: func() {
		time.AfterFunc(exitGrace, func() { stop(errNoEnd) })
	}}
	if cut {
		cw.onCut = func() { stop(errPowerCut) }
	}
	spec.Console = cw
	res, err := vm.Machine.Boot(ctx, spec)
	cw.flush()
	return res, err, cw
}

// exitGrace is how long the guest may take to end after the runner
// printed its exit status; then qemu is killed (errNoEnd).
const exitGrace = 20 * time.Second

var errNoEnd = errors.New("the guest did not end after the runner's exit status")

// context bounds one boot by Config.Timeout and by the go test deadline.
func (vm *VM) context(t testing.TB) (context.Context, context.CancelFunc) {
	ctx := context.Background()
	dl, _ := t.(interface{ Deadline() (time.Time, bool) })
	if dl == nil {
		return context.WithTimeout(ctx, vm.cfg.Timeout)
	}
	if d, ok := dl.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-10*time.Second))
		ctx2, cancel2 := context.WithTimeout(ctx, vm.cfg.Timeout)
		return ctx2, func() { cancel2(); cancel() }
	}
	return context.WithTimeout(ctx, vm.cfg.Timeout)
}

// bootKernel returns the kernel image to boot: the PVH vmlinux (faster)
// when booting without firmware, else the bzImage.
func (vm *VM) bootKernel(t testing.TB) string {
	// With a TPM, SeaBIOS's TPM setup and the PVH loader clash: the guest
	// finds corrupt ACPI tables (no ACPI, hence no TPM). Use the bzImage.
	if vm.cfg.Firmware != nil || vm.cfg.TPM || os.Getenv(envNoPVH) == "1" || archOf(vm.cfg.Arch) != ArchAMD64 {
		return vm.kernel.Image
	}
	p, err := pvhKernel(vm.kernel.Image)
	if err != nil {
		t.Logf("vmtest: booting the bzImage (slower): %v", err)
		return vm.kernel.Image
	}
	return p
}

func (vm *VM) cmdline() string {
	// no_timer_check: under a loaded host, TCG may deliver the timer IRQ
	// late and the kernel panics "IO-APIC + timer doesn't work".
	c := "console=ttyS0 panic=-1 no_timer_check"
	if archOf(vm.cfg.Arch) == ArchARM64 {
		c = "console=" + arm64Console + " panic=-1"
	}
	if os.Getenv(envVerbose) != "1" {
		c += " quiet"
	}
	return strings.TrimSpace(c + " " + vm.cfg.Cmdline)
}

// writeInitrd builds the binaries and packs the initramfs of one boot.
func (vm *VM) writeInitrd(t testing.TB, dst, run string) error {
	img := &guestImage{kernel: vm.kernel, pkgDir: vm.pkgDir, files: vm.cfg.Files}
	var err error
	if img.runner, err = runnerBinary(archOf(vm.cfg.Arch)); err != nil {
		return err
	}
	if img.test, err = testBinary(vm.pkgDir, archOf(vm.cfg.Arch)); err != nil {
		return err
	}
	if img.load, img.ship, err = vm.modules(); err != nil {
		return err
	}
	if img.plan, err = vm.plan(t, run); err != nil {
		return err
	}
	return writeInitrd(dst, img)
}

// modules resolves the modules to load (disk drivers first) and to ship.
func (vm *VM) modules() (load, ship []kmod.Module, err error) {
	names := vm.cfg.Modules
	if len(vm.cfg.Disks) > 0 {
		names = append(diskModules[:len(diskModules):len(diskModules)], names...)
	}
	if slices.ContainsFunc(vm.cfg.Disks, func(d Disk) bool { return d.USB }) {
		names = append(usbDiskModules[:len(usbDiskModules):len(usbDiskModules)], names...)
	}
	if vm.cfg.Net != nil {
		names = append(NetModules[:len(NetModules):len(NetModules)], names...)
	}
	if archOf(vm.cfg.Arch) == ArchARM64 {
		names = prependModules(arm64Modules(vm.cfg.TPM), names)
	}
	if load, err = resolveModules(vm.kernel, names); err != nil {
		return nil, nil, err
	}
	ship, err = resolveModules(vm.kernel, vm.cfg.ExtraModules)
	return load, ship, err
}

// plan returns what the runner does: which tests, with which arguments.
func (vm *VM) plan(t testing.TB, run string) (plan.Plan, error) {
	if run == "" {
		run = vm.cfg.Run
	}
	if run == "" {
		names, err := guestTests(vm.pkgDir)
		if err != nil {
			return plan.Plan{}, err
		}
		if len(names) == 0 {
			return plan.Plan{}, fmt.Errorf("vmtest: no Test function in a //go:build %s file of %s, and Config.Run is empty", GuestTag, vm.pkgDir)
		}
		run = runRegexp(names)
	}
	host, _, _ := strings.Cut(t.Name(), "/")
	p := plan.Plan{
		Binary: guestBinary,
		Args: []string{"-test.v=test2json", "-test.run=" + run, "-test.skip=^" + regexp.QuoteMeta(host) + "$",
			"-test.timeout=" + (vm.cfg.Timeout * 4 / 5).String()},
		Dir:    guestPkgDir,
		Env:    []string{GuestEnv + "=1", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp", "TMPDIR=/tmp"},
		Output: guestOutput,
	}
	if ci := os.Getenv("CI"); ci != "" {
		p.Env = append(p.Env, "CI="+ci)
	}
	p.Devices = append(p.Devices, diskNodes(vm.cfg.Disks)...)
	if archOf(vm.cfg.Arch) == ArchARM64 {
		p.Output = arm64Output
		p.Devices = append(p.Devices, arm64Output)
	}
	return p, nil
}

// consoleWatch receives the guest console: it notes when the runner
// starts and, when verbose, logs the console live.
type consoleWatch struct {
	t       testing.TB
	verbose bool
	mu      sync.Mutex
	partial []byte
	started time.Time // when the start marker arrived
	uptime  string    // guest uptime printed with the marker
	onExit  func()    // called once when the exit marker arrives
	exited  bool
	onCut   func() // called once when the power cut marker arrives
	cut     bool
}

func (w *consoleWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.line(string(bytes.TrimRight(w.partial[:i], "\r")))
		w.partial = w.partial[i+1:]
	}
}

func (w *consoleWatch) line(s string) {
	if i := strings.Index(s, plan.StartMarker); i >= 0 && w.started.IsZero() {
		w.started = time.Now()
		w.uptime = strings.TrimPrefix(strings.TrimSpace(s[i+len(plan.StartMarker):]), "uptime=")
	}
	if strings.Contains(s, plan.PowerCutMarker) && !w.cut && w.onCut != nil {
		w.cut = true
		w.onCut()
	}
	if strings.Contains(s, plan.ExitMarker) && !w.exited {
		w.exited = true
		if w.onExit != nil {
			w.onExit()
		}
	}
	if w.verbose {
		w.t.Logf("console: %s", s)
	}
}

func (w *consoleWatch) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.line(string(w.partial))
		w.partial = nil
	}
}

// exitStatus finds the runner's exit marker on the console.
func exitStatus(console []byte) (int, bool) {
	i := bytes.LastIndex(console, []byte(plan.ExitMarker))
	if i < 0 {
		return 0, false
	}
	rest := console[i+len(plan.ExitMarker):]
	if j := bytes.IndexAny(rest, "\r\n"); j >= 0 {
		rest = rest[:j]
	}
	n, err := strconv.Atoi(string(rest))
	return n, err == nil
}

// diskNodes returns the guest's device nodes of disks: virtio ones
// /dev/vda, /dev/vdb, ... and USB ones /dev/sda, ..., each in order.
func diskNodes(disks []Disk) []string {
	var nodes []string
	vd, sd := 0, 0
	for _, d := range disks {
		if d.USB {
			nodes, sd = append(nodes, "/dev/sd"+string(rune('a'+sd))), sd+1
		} else {
			nodes, vd = append(nodes, "/dev/vd"+string(rune('a'+vd))), vd+1
		}
	}
	return nodes
}
