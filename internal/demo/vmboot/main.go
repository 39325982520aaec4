// Command vmboot boots the InitOS demo machine (docs/demo.md): OVMF with
// Secure Boot (OVMF_CODE_4M.secboot.fd) on an EMPTY variable store (setup
// mode), a swtpm TPM 2.0, the ESP image as the first virtio disk and the
// verity data disk as the second, through internal/vmtest.Machine. The
// firmware boots \EFI\BOOT\BOOTX64.EFI from the ESP.
//
//	go run ./internal/demo/vmboot --esp esp.img --data data.img --state DIR [--flip OFFSET] [--tampered-esp esp2.img]
//
// Boot 1 must show the demo init enrolling the owner keys (then it
// reboots), boot 2 Secure Boot on and the verity disk read through
// dm-verity; with --flip, a boot after flipping one bit of the machine's
// data disk must show dm-verity refusing that block; with --tampered-esp
// (an ESP whose UKI was changed after signing), the last boot must show
// the firmware refusing the UKI ("Access Denied"). The
// console lines that tell the story ("initos-demo:" ones, the firmware's
// "Access Denied", the kernel's "Secure boot enabled") are copied to
// stdout; the exit status is 1 when an expected line is missing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"initos/internal/vmtest"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "vmboot: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	esp, data, tampered, state, code, vars string
	flip                                   int64
	timeout                                time.Duration
}

func run(args []string, stdout io.Writer) error {
	var o options
	fs := flag.NewFlagSet("vmboot", flag.ContinueOnError)
	fs.StringVar(&o.esp, "esp", "", "FAT ESP image holding \\EFI\\BOOT\\BOOTX64.EFI (required)")
	fs.StringVar(&o.data, "data", "", "verity data disk image (required)")
	fs.StringVar(&o.tampered, "tampered-esp", "", "optional ESP image with a UKI changed after signing: boot 3 must be refused")
	fs.Int64Var(&o.flip, "flip", -1, "optional byte `offset` in the data disk: after boot 2, flip a bit there (in the machine's copy) and boot again: dm-verity must refuse the block")
	fs.StringVar(&o.state, "state", "", "machine state directory: disk copies, UEFI variables, TPM state (required)")
	fs.StringVar(&o.code, "code", "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "OVMF code image (Secure Boot build)")
	fs.StringVar(&o.vars, "vars", "/usr/share/OVMF/OVMF_VARS_4M.fd", "template of the UEFI variable store (empty: setup mode)")
	fs.DurationVar(&o.timeout, "timeout", 4*time.Minute, "limit for each boot")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.esp == "" || o.data == "" || o.state == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("--esp, --data and --state are required")
	}
	m, err := vmtest.NewMachine(o.state, vmtest.MachineConfig{
		Firmware: &vmtest.Firmware{Code: o.code, Vars: o.vars, SecureBoot: true},
		TPM:      true,
		Disks:    []vmtest.Disk{{Path: o.esp}, {Path: o.data}},
	})
	if err != nil {
		return err
	}
	return boots(m, &o, stdout)
}

// step is one boot and the console lines it must show.
type step struct {
	title  string
	before func() error // prepares the disks
	want   []string     // substrings that must all appear
	deny   bool         // stop at the firmware's Access Denied
	refuse bool         // dm-verity must refuse a block (a REFUSED line)
}

func boots(m *vmtest.Machine, o *options, stdout io.Writer) error {
	steps := []step{
		{title: "boot 1: empty UEFI variable store (setup mode): the demo init enrolls our keys",
			want: []string{"initos-demo: enrolled db, KEK and PK", "SetupMode=0 now"}},
		{title: "boot 2: Secure Boot enforced with our keys: the signed UKI boots and reads the verity disk",
			want: []string{"initos-demo: Secure Boot: SecureBoot=1 SetupMode=0", "initos-demo: SUCCESS: read "}},
	}
	if o.flip >= 0 {
		steps = append(steps, step{title: fmt.Sprintf("boot %d: one bit of the data disk flipped offline (byte %d): the kernel's dm-verity refuses that block", len(steps)+1, o.flip),
			before: func() error { return flipBit(m.DiskPath(1), o.flip) },
			want:   []string{"initos-demo: Secure Boot: SecureBoot=1", "initos-demo: REFUSED: "}, refuse: true})
	}
	if o.tampered != "" {
		steps = append(steps, step{title: fmt.Sprintf("boot %d: the UKI with one .cmdline byte changed after signing: the firmware refuses it", len(steps)+1),
			before: func() error { return overwrite(m.DiskPath(0), o.tampered) },
			want:   []string{"Access Denied"}, deny: true})
	}
	for i, s := range steps {
		if s.before != nil {
			if err := s.before(); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "== %s\n", s.title)
		if err := boot(m, s, o.timeout, stdout); err != nil {
			return fmt.Errorf("boot %d: %w", i+1, err)
		}
	}
	return nil
}

// boot runs one boot, streaming the interesting console lines, and checks
// that every wanted line appeared (and, for a refused image, that our init
// never ran).
func boot(m *vmtest.Machine, s step, limit time.Duration, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	w := &lineFilter{out: stdout}
	if s.deny {
		w.stop = func(line string) bool { return strings.Contains(line, "Access Denied") }
		w.cancel = cancel
	}
	res, err := m.Boot(ctx, vmtest.BootSpec{Console: w})
	w.flush()
	console := ansi.ReplaceAllString(string(res.Console), "")
	var missing []string
	for _, want := range s.want {
		if !strings.Contains(console, want) {
			missing = append(missing, fmt.Sprintf("%q", want))
		}
	}
	if s.deny && strings.Contains(console, "initos-demo:") {
		missing = append(missing, "no initos-demo line (the firmware must not start the image)")
	}
	for _, bad := range []string{"initos-demo: ERROR", "initos-demo: REFUSED"} {
		if strings.Contains(console, bad) && !(s.refuse && strings.HasSuffix(bad, "REFUSED")) {
			missing = append(missing, fmt.Sprintf("no %q line", bad))
		}
	}
	fmt.Fprintf(stdout, "   (qemu ran %v)\n", res.Elapsed.Round(time.Second))
	if len(missing) == 0 {
		return nil
	}
	if err == nil {
		err = errors.New("guest powered off")
	}
	return fmt.Errorf("%v; missing on the console: %s\nqemu: %s\nconsole log: %s", err,
		strings.Join(missing, ", "), res.CommandLine(), filepath.Join(res.Dir, "console.log"))
}

// flipBit flips bit 0 of the byte at off in the disk image path.
func flipBit(path string, off int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("flip a bit: %w", err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		return fmt.Errorf("flip a bit of %s at %d: %w", path, off, err)
	}
	b[0] ^= 1
	if _, err := f.WriteAt(b, off); err != nil {
		return fmt.Errorf("flip a bit of %s at %d: %w", path, off, err)
	}
	return f.Close()
}

// overwrite replaces the machine's copy of a disk by another image.
func overwrite(dst, src string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("replace ESP: %w", err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return fmt.Errorf("replace ESP: %w", err)
	}
	return nil
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;=?]*[a-zA-Z]`)

// interesting are the console lines copied to stdout.
var interesting = []string{"initos-demo:", "Access Denied", "Secure boot enabled", "is corrupted", "Kernel panic"}

// lineFilter passes the interesting console lines to out, indented.
type lineFilter struct {
	mu     sync.Mutex
	out    io.Writer
	buf    []byte
	stop   func(string) bool
	cancel context.CancelFunc
}

func (w *lineFilter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexAny(string(w.buf), "\r\n")
		if i < 0 {
			return len(p), nil
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

func (w *lineFilter) line(l string) {
	l = strings.TrimSpace(ansi.ReplaceAllString(l, ""))
	for _, s := range interesting {
		if i := strings.Index(l, s); i >= 0 {
			if s == "initos-demo:" {
				l = l[i:] // drop kernel log noise in front
			}
			fmt.Fprintf(w.out, "   | %s\n", l)
			break
		}
	}
	if w.stop != nil && w.stop(l) {
		w.cancel()
	}
}

func (w *lineFilter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		w.buf = nil
	}
}
