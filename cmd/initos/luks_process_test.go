package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"initos/internal/testenv"
	"initos/loop"
	"initos/luks2"
)

// buildCLI builds the initos binary for the process-level tests (signals,
// exit statuses, resource use).
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "initos")
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build initos: %v\n%s", err, out)
	}
	return bin
}

// procResult is what a finished initos process reports.
type procResult struct {
	status int // exit status, or 128 + signal
	stderr string
	cpu    time.Duration // user + system
	maxRSS int64         // peak resident set, bytes (see runProc)
}

func result(cmd *exec.Cmd, stderr *bytes.Buffer) procResult {
	st := cmd.ProcessState
	ru := st.SysUsage().(*syscall.Rusage)
	r := procResult{status: st.ExitCode(), stderr: stderr.String(), cpu: st.UserTime() + st.SystemTime(), maxRSS: ru.Maxrss * 1024}
	if ws := st.Sys().(syscall.WaitStatus); ws.Signaled() {
		r.status = 128 + int(ws.Signal())
	}
	return r
}

// runProc runs a command to its end. Its peak RSS is read from
// /proc/PID/status (VmHWM) while it runs, not from getrusage: Go starts
// children with vfork, and Linux records the parent's high-water mark as
// the child's ru_maxrss at exec, so a test process that once grew would
// inflate every child's. VmHWM only grows, and the peaks measured here
// (argon2 memory) last long enough for the 5 ms polling to see them.
func runProc(t *testing.T, name string, args ...string) procResult {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s %q: %v", name, args, err)
	}
	done := make(chan struct{})
	hwm := make(chan int64)
	go func() { hwm <- pollHWM(cmd.Process.Pid, done) }()
	err := cmd.Wait()
	close(done)
	if err != nil && !errors.As(err, new(*exec.ExitError)) {
		t.Fatalf("%s %q: %v", name, args, err)
	}
	r := result(cmd, &stderr)
	r.maxRSS = <-hwm
	return r
}

// pollHWM returns the largest VmHWM of process pid seen until done.
func pollHWM(pid int, done <-chan struct{}) int64 {
	var peak int64
	path := "/proc/" + itoa64(uint64(pid)) + "/status"
	for {
		if b, err := os.ReadFile(path); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
					peak = max(peak, kb*1024)
				}
			}
		}
		select {
		case <-done:
			return peak
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// unlocks reports whether pass opens the LUKS volume at img.
func unlocks(t *testing.T, img, pass string) bool {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := luks2.ReadHeader(f)
	if err != nil {
		t.Logf("ReadHeader(%s) = %v", img, err)
		return false
	}
	vk, _, err := h.Unlock(f, []byte(pass))
	vk.Destroy()
	return err == nil
}

// TestLuksProcessSignals sends SIGINT to a format and SIGTERM to an
// add-key while they calibrate their PBKDF: each exits 130 or 143 at a
// safe point and the device is unchanged.
func TestLuksProcessSignals(t *testing.T) {
	bin := buildCLI(t)
	img, key := luksFiles(t)
	mustLuks(t, append([]string{"format", "--key-file", key("old"), img}, luksFast...)...)
	before, _ := os.ReadFile(img)
	for _, tc := range []struct {
		sig  syscall.Signal
		want int
		args []string
	}{
		{syscall.SIGINT, 130, []string{"luks", "format", "--force", "--key-file", key("new"), img}},
		{syscall.SIGTERM, 143, []string{"luks", "add-key", "--key-file", key("old"), img, key("new")}},
	} {
		cmd := exec.Command(bin, tc.args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // well into the PBKDF calibration
		if err := cmd.Process.Signal(tc.sig); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		r := result(cmd, &stderr)
		if r.status != tc.want || !strings.Contains(r.stderr, "context canceled") {
			t.Errorf("initos %s + %s: exit %d, stderr %q; want %d, cancelled", tc.args[1], unix.SignalName(tc.sig), r.status, r.stderr, tc.want)
		}
	}
	if after, _ := os.ReadFile(img); !bytes.Equal(before, after) {
		t.Errorf("an interrupted format or add-key changed the device")
	}
}

// openPTY returns the master and slave of a new pseudo-terminal.
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		testenv.Missing(t, "pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+itoa64(uint64(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestLuksProcessConfirm runs format on a device with a filesystem
// signature on a real terminal (a pty): it asks, like cryptsetup, and
// only YES formats.
func TestLuksProcessConfirm(t *testing.T) {
	bin := buildCLI(t)
	_, key := luksFiles(t)
	for _, answer := range []string{"no", "YES"} {
		img := ext4Image(t)
		m, s := openPTY(t)
		cmd := exec.Command(bin, append(append([]string{"luks", "format", "--key-file", key("k")}, luksFast...), img)...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		prompt := readUntil(t, m, "(Type 'YES' in capital letters): ")
		if !strings.Contains(prompt, img+" contains a ext2/3/4 filesystem signature.") {
			t.Errorf("prompt = %q", prompt)
		}
		m.WriteString(answer + "\n")
		err := cmd.Wait()
		if ok := err == nil; ok != (answer == "YES") || unlocks(t, img, "k") != ok {
			t.Errorf("format answered %q: %v, volume made %v", answer, err, unlocks(t, img, "k"))
		}
	}
}

// readUntil reads the pty master until want appears.
func readUntil(t *testing.T, m *os.File, want string) string {
	t.Helper()
	var got []byte
	buf := make([]byte, 256)
	m.SetReadDeadline(time.Now().Add(60 * time.Second))
	for !bytes.Contains(got, []byte(want)) {
		n, err := m.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("reading the terminal: %v after %q", err, got)
		}
	}
	return string(got)
}

// TestLuksFormatBusy: a file backing a loop device, and a loop device
// held by a mount, are in use: format refuses both with exit 5, like
// cryptsetup (EBUSY), even with --force.
func TestLuksFormatBusy(t *testing.T) {
	testenv.RequireRoot(t)
	img, key := luksFiles(t)
	if err := os.Truncate(img, 128<<20); err != nil { // btrfs' minimum size
		t.Fatal(err)
	}
	l, err := loop.Attach(img, loop.Config{})
	if err != nil {
		testenv.Missing(t, "loop devices: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	format := func(dev string) error {
		_, err := runLuksCLI(t, append(append([]string{"format", "--force", "--key-file", key("k")}, luksFast...), dev)...)
		return err
	}
	if err := format(img); exitStatus(err) != 5 || !strings.Contains(err.Error(), "device is in use: it is the backing file of "+l.Path) {
		t.Errorf("format(backing file of %s) = %v (exit %d), want exit 5", l.Path, err, exitStatus(err))
	}
	mkfs := testenv.Tool(t, "mkfs.btrfs")
	if out, err := exec.Command(mkfs, "-q", "-f", l.Path).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.btrfs %s: %v\n%s", l.Path, err, out)
	}
	mnt := t.TempDir()
	if err := unix.Mount(l.Path, mnt, "btrfs", 0, ""); err != nil {
		testenv.Missing(t, "mounting btrfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, 0) })
	if err := format(l.Path); exitStatus(err) != 5 || !strings.Contains(err.Error(), "open "+l.Path+": device is in use (mounted, mapped or open exclusively: device or resource busy)") {
		t.Errorf("format(mounted %s) = %v (exit %d), want exit 5", l.Path, err, exitStatus(err))
	}
}

// TestLuksProgressBar formats on a terminal: the PBKDF calibration shows
// on stderr, and --progress=false silences it.
func TestLuksProgressBar(t *testing.T) {
	bin := buildCLI(t)
	img, key := luksFiles(t)
	for _, show := range []bool{true, false} {
		m, s := openPTY(t)
		cmd := exec.Command(bin, "luks", "format", "--force", "--progress="+strconv.FormatBool(show), "--pbkdf", "pbkdf2",
			"--iter-time", "200", "--key-file", key("k"), img)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		go io.Copy(&out, m)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("format --progress=%v: %v\n%s", show, err, out.String())
		}
		time.Sleep(100 * time.Millisecond) // let the reader drain the pty
		if got := strings.Contains(out.String(), "calibrating PBKDF"); got != show {
			t.Errorf("format --progress=%v on a terminal: progress shown %v, output:\n%q", show, got, out.String())
		}
	}
}
