package vmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// MachineConfig describes the hardware of a Machine. The zero value is a
// BIOS machine with 1 GiB of memory, no disk and no TPM.
type MachineConfig struct {
	MemoryMB int       // guest memory; default 1024
	Disks    []Disk    // copied into the state directory once, at NewMachine
	TPM      bool      // a swtpm TPM 2.0 per boot, its state kept in Dir/tpm
	Firmware *Firmware // UEFI firmware; nil boots with qemu's default BIOS
	QEMU     string    // qemu-system-x86_64; default $INITOS_VMTEST_QEMU or $PATH
	Net      *Net      // a NIC on qemu's user network; nil: none
	Arch     string    // ArchAMD64 (default) or ArchARM64
	// Reboots lets the guest reboot within one Boot (no -no-reboot): it
	// ends when the guest powers off. For firmware-path reboots.
	Reboots bool
	// Watchdog adds an i6300esb watchdog whose expiry resets the guest
	// (with Reboots: back to the firmware; without: the Boot ends).
	Watchdog bool
}

// Machine is one virtual computer: a state directory holding its disks,
// its UEFI variable store and its TPM state, which all survive from one
// Boot to the next (multi-boot scenarios: install, reboot, unlock...).
// A Machine boots once at a time.
type Machine struct {
	Dir string // state directory, owned by the Machine

	cfg   MachineConfig
	disks []Disk       // the copies in Dir, attached in order
	vars  string       // the per-machine copy of Firmware.Vars, or ""
	gone  map[int]bool // disks unplugged (Unplug)
	mu    sync.Mutex
	boots int
}

// BootSpec says what to boot. With Kernel set it is a direct kernel boot
// (through the firmware when the Machine has one); with Kernel empty the
// firmware boots from the attached disks (UEFI: \EFI\BOOT\BOOTX64.EFI).
type BootSpec struct {
	Kernel   string    // kernel image for direct boot, or "" to boot from disk
	Initrd   string    // initramfs for direct boot (optional)
	Cmdline  string    // kernel command line for direct boot
	Console  io.Writer // optional: receives the guest console (ttyS0) live
	QEMUArgs []string  // extra qemu arguments, appended last
}

// Result is what one Boot produced.
type Result struct {
	Args    []string      // the qemu command line (argv), for reproducing the boot
	Dir     string        // the per-boot directory (console.log, output, swtpm.log)
	Console []byte        // the guest console, ttyS0
	Output  []byte        // the guest's data channel, ttyS1 (/dev/ttyS1 in the guest)
	Stderr  []byte        // qemu's (and swtpm's) own diagnostics
	Start   time.Time     // when qemu was started
	Elapsed time.Duration // qemu wall time
}

// CommandLine returns Args quoted for a POSIX shell.
func (r *Result) CommandLine() string {
	q := make([]string, len(r.Args))
	for i, a := range r.Args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// NewMachine creates a Machine whose state lives in dir (created if
// missing): it copies every disk image and the firmware variable store
// there, so the originals are never modified.
func NewMachine(dir string, cfg MachineConfig) (*Machine, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("new machine: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("new machine: %w", err)
	}
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = defaultMemoryMB
	}
	if err := checkArch(cfg.Arch); err != nil {
		return nil, err
	}
	m := &Machine{Dir: dir, cfg: cfg}
	for i, d := range cfg.Disks {
		if d.USB && archOf(cfg.Arch) != ArchAMD64 {
			return nil, fmt.Errorf("new machine: disk %d: USB disks are amd64 only", i)
		}
		dst := filepath.Join(dir, fmt.Sprintf("disk%d.img", i))
		if err := copyFile(dst, d.Path); err != nil {
			return nil, fmt.Errorf("new machine: copy disk %d: %w", i, err)
		}
		m.disks = append(m.disks, Disk{Path: dst, ReadOnly: d.ReadOnly, Serial: d.Serial, USB: d.USB})
	}
	if fw := cfg.Firmware; fw != nil {
		m.vars = filepath.Join(dir, "vars.fd")
		if err := copyFile(m.vars, fw.Vars); err != nil {
			return nil, fmt.Errorf("new machine: copy firmware vars: %w", err)
		}
	}
	if cfg.TPM {
		if err := os.MkdirAll(m.TPMStateDir(), 0o700); err != nil {
			return nil, fmt.Errorf("new machine: %w", err)
		}
	}
	return m, nil
}

// DiskPath returns the path of the Machine's copy of disk i, to inspect or
// modify it between boots.
func (m *Machine) DiskPath(i int) string { return m.disks[i].Path }

// Unplug detaches disk i from the following boots (a USB stick pulled
// out after the install); its copy stays at DiskPath(i).
func (m *Machine) Unplug(i int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gone == nil {
		m.gone = map[int]bool{}
	}
	m.gone[i] = true
}

// VarsPath returns the Machine's UEFI variable store ("" without firmware).
func (m *Machine) VarsPath() string { return m.vars }

// TPMStateDir returns the directory holding the swtpm state.
func (m *Machine) TPMStateDir() string { return filepath.Join(m.Dir, "tpm") }

// Boot starts the Machine and waits until the guest powers off, the qemu
// process exits, or ctx is done (qemu is then killed). It returns the
// Result even with an error, so that callers can log the console and the
// command line.
func (m *Machine) Boot(ctx context.Context, spec BootSpec) (*Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.boots++
	res := &Result{Dir: filepath.Join(m.Dir, fmt.Sprintf("boot%d", m.boots))}
	if err := os.MkdirAll(res.Dir, 0o755); err != nil {
		return res, fmt.Errorf("boot: %w", err)
	}
	qemu, err := m.qemuPath()
	if err != nil {
		return res, fmt.Errorf("boot: %w", err)
	}
	var tpm *swtpm
	if m.cfg.TPM {
		if tpm, err = startSWTPM(ctx, m.TPMStateDir(), res.Dir); err != nil {
			return res, fmt.Errorf("boot: %w", err)
		}
		defer tpm.stop()
	}
	res.Args = append([]string{qemu}, m.qemuArgs(spec, res.Dir, tpm)...)
	err = m.run(ctx, spec, res)
	if tpm != nil {
		res.Stderr = append(res.Stderr, tpm.stop()...)
	}
	return res, err
}

func (m *Machine) run(ctx context.Context, spec BootSpec, res *Result) error {
	var console, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, res.Args[0], res.Args[1:]...)
	cmd.Stdout = &console
	if spec.Console != nil {
		cmd.Stdout = io.MultiWriter(&console, spec.Console)
	}
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	res.Start = time.Now()
	err := cmd.Run()
	res.Elapsed = time.Since(res.Start)
	res.Console, res.Stderr = console.Bytes(), stderr.Bytes()
	_ = os.WriteFile(filepath.Join(res.Dir, "console.log"), res.Console, 0o644)
	out, rerr := os.ReadFile(filepath.Join(res.Dir, "output"))
	res.Output = out
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("boot: qemu killed after %v: %w", res.Elapsed.Round(time.Millisecond), context.Cause(ctx))
	case err != nil:
		return fmt.Errorf("boot: qemu: %w: %s", err, bytes.TrimSpace(res.Stderr))
	case rerr != nil && !errors.Is(rerr, os.ErrNotExist):
		return fmt.Errorf("boot: read guest output: %w", rerr)
	}
	return nil
}

func (m *Machine) qemuPath() (string, error) {
	name := m.cfg.QEMU
	if name == "" {
		name = qemuName(m.cfg.Arch)
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errNoQEMU, err)
	}
	return p, nil
}

// copyFile copies src to dst through a temporary file, so that dst is
// either complete or absent. Runs of zeros become holes: blank test disks
// of gigabytes copy in no time and take no space.
func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".copy-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := copySparse(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// copySparse copies in to out, seeking over 64 KiB blocks of zeros.
func copySparse(out *os.File, in io.Reader) error {
	buf, zero := make([]byte, 64<<10), make([]byte, 64<<10)
	var size int64
	for {
		n, err := io.ReadFull(in, buf)
		if n > 0 {
			if bytes.Equal(buf[:n], zero[:n]) {
				if _, serr := out.Seek(int64(n), io.SeekCurrent); serr != nil {
					return serr
				}
			} else if _, werr := out.Write(buf[:n]); werr != nil {
				return werr
			}
			size += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return out.Truncate(size)
		}
		if err != nil {
			return err
		}
	}
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
