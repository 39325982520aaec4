package initramfs_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"initos/initramfs"
	"initos/internal/testenv"
	"initos/internal/vmtest"
)

// bootInit is a static /init that checks what the kernel unpacked and
// powers off. It prints the marker only if every check passes.
const bootInit = `package main

import (
	"fmt"
	"os"
	"syscall"
)

func check() error {
	if t, err := os.Readlink("/bin"); err != nil || t != "usr/bin" {
		return fmt.Errorf("symlink /bin: %q, %v", t, err)
	}
	if b, err := os.ReadFile("/usr/share/marker"); err != nil || string(b) != "unpacked by the kernel" {
		return fmt.Errorf("file /usr/share/marker: %q, %v", b, err)
	}
	if fi, err := os.Stat("/secret"); err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		return fmt.Errorf("directory /secret: %v, %v", fi, err)
	}
	if fi, err := os.Stat("/dev/console"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return fmt.Errorf("/dev/console: %v, %v", fi, err)
	}
	return nil
}

func main() {
	if err := check(); err != nil {
		fmt.Println("INITOS-BOOT-FAIL:", err)
	} else {
		fmt.Println("INITOS-BOOT-OK")
	}
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}
`

// TestVMBoot boots the Debian kernel with our initramfs, gzip and zstd
// compressed, and checks the kernel unpacked it (tier 2).
func TestVMBoot(t *testing.T) {
	if vmtest.InGuest() {
		t.Skip("not in VM: boots VMs from the host")
	}
	testenv.Tool(t, "qemu-system-x86_64")
	k, err := vmtest.FindKernel()
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	init := buildInit(t)
	for _, c := range []initramfs.Compression{initramfs.Gzip, initramfs.Zstd} { // both wrap the same newc bytes as None
		t.Run(c.String(), func(t *testing.T) {
			a := &initramfs.Archive{}
			a.AddFile("init", 0o755, init)
			a.AddCharDevice("dev/console", 0o600, 5, 1)
			a.AddSymlink("bin", "usr/bin")
			a.AddFile("usr/share/marker", 0o644, []byte("unpacked by the kernel"))
			a.AddDir("secret", 0o700)
			img := filepath.Join(t.TempDir(), "initrd.img")
			if err := a.WriteFile(img, c); err != nil {
				t.Fatal(err)
			}
			m, err := vmtest.NewMachine(t.TempDir(), vmtest.MachineConfig{MemoryMB: 512})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			res, err := m.Boot(ctx, vmtest.BootSpec{Kernel: k.Image, Initrd: img, Cmdline: "console=ttyS0 panic=-1 quiet"})
			if err != nil || !bytes.Contains(res.Console, []byte("INITOS-BOOT-OK")) {
				t.Errorf("boot with a %v initramfs: %v\nqemu: %s\nconsole:\n%s", c, err, res.CommandLine(), res.Console)
			}
		})
	}
}

// buildInit compiles bootInit statically.
func buildInit(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module bootinit\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(bootInit), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Tool(t, "go"), "build", "-trimpath", "-ldflags=-s -w", "-o", "init", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build init: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "init"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
