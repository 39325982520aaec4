// Command full is `make demo`, the README's main job (docs/demo.md): on a
// build machine, the owner's keys, the debianhost and recovery images,
// `initos build` and the USB installer image; then one virtual machine
// (OVMF in Secure Boot setup mode, swtpm, a blank disk) that installs
// from the stick, boots the installed disk into debianhost, takes an A/B
// upgrade and a broken one, and refuses a tampered UKI and a tampered
// modules image. Every step is the `initos` CLI as a user runs it; the
// machine is internal/vmtest's.
//
//	go run ./internal/demo/full --initos out/initos [--keep]
//
// Each stage prints one line, then the commands and the VM's console
// lines (indented, "| "). Exit status 1 when a stage fails; nothing is
// ever skipped silently.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "--connect" { // qemu's guestfwd command (vm.go)
		proxy(os.Args[2])
		return
	}
	initos := flag.String("initos", "out/initos", "the initos binary (make build)")
	keep := flag.Bool("keep", os.Getenv("KEEP") == "1", "keep the work directory")
	work := flag.String("work", "", "work directory (default: a new one under $TMPDIR)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	repo, err := os.Getwd()
	if err != nil {
		fatalf("%v", err)
	}
	bin, err := filepath.Abs(*initos)
	if err != nil {
		fatalf("%v", err)
	}
	if _, err := os.Stat(bin); err != nil {
		fatalf("%v: run make build first (make demo does)", err)
	}
	w := *work
	if w == "" {
		if w, err = os.MkdirTemp("", "initos-demo-full."); err != nil {
			fatalf("%v", err)
		}
	}
	n := &narrator{out: os.Stdout, work: w, initos: bin, repo: repo, start: time.Now()}
	d := &demo{n: n, w: w}
	err = d.run(ctx)
	n.summary(err == nil)
	if *keep || err != nil {
		fmt.Printf("work directory kept: %s\n", w)
	} else {
		os.RemoveAll(w)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

// proxy copies standard input to a TCP connection to addr and the
// connection to standard output: qemu runs it for each connection the
// guest makes to the registry (vmtest.GuestForward.Cmd).
func proxy(addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		fatalf("%v", err)
	}
	go func() {
		io.Copy(c, os.Stdin)
		c.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(os.Stdout, c)
}

// scaled multiplies a VM time limit by $INITOS_VMTEST_TIMEOUT_SCALE.
func scaled(d time.Duration) time.Duration {
	var f float64
	if _, err := fmt.Sscan(os.Getenv("INITOS_VMTEST_TIMEOUT_SCALE"), &f); err == nil && f > 0 {
		return time.Duration(float64(d) * f)
	}
	return d
}
