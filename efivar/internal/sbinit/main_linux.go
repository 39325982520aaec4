// Command sbinit is the /init of efivar's Secure Boot firmware tests (tier
// 3). It mounts efivarfs (loading /efivarfs.ko) and, as the kernel command
// line asks with initos.sbtest=MODE:
//
//   - enroll: writes /keys/db.auth, /keys/KEK.auth and /keys/PK.auth with
//     efivar.Enroll (the machine must be in setup mode);
//   - report: only reports;
//   - addnext: reports, then (once: when no "InitOS B" entry exists) adds a
//     Boot#### entry "InitOS B" for \EFI\Linux\b.efi (a short-form File
//     Path device path), keeps it last in BootOrder and sets BootNext to it;
//
// then prints one line "INITOS-SB: SecureBoot=N SetupMode=N db=SUBJECTS
// marker=MARKER BootCurrent=XXXX" (or "INITOS-SB: error: ...") on the console and powers
// off. MARKER is the value of initos.marker= on the command line.
package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"initos/efivar"
	"initos/kmod"
)

func main() {
	if err := run(); err != nil {
		fmt.Printf("\nINITOS-SB: error: %v\n", err)
	}
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

func run() error {
	for _, m := range []struct{ src, dst, fs string }{{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}} {
		if err := unix.Mount(m.src, m.dst, m.fs, 0, ""); err != nil {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	if err := kmod.Load("/efivarfs.ko", ""); err != nil {
		return err
	}
	if err := unix.Mount("efivarfs", efivar.DefaultEfivarfs, "efivarfs", 0, ""); err != nil {
		return fmt.Errorf("mount efivarfs: %w", err)
	}
	store, err := efivar.OpenEfivarfs("")
	if err != nil {
		return err
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	args := parseCmdline(string(cmdline))
	if args["initos.sbtest"] == "enroll" {
		if err := enroll(store); err != nil {
			return err
		}
	}
	if err := report(store, args["initos.marker"]); err != nil {
		return err
	}
	if args["initos.sbtest"] == "addnext" {
		return addNext(store)
	}
	return nil
}

func addNext(store efivar.Store) error {
	entries, err := efivar.BootEntries(store)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Option.Description == "InitOS B" {
			return nil
		}
	}
	order, err := efivar.BootOrder(store)
	if err != nil {
		return err
	}
	n, err := efivar.AddBootEntry(store, &efivar.LoadOption{
		Attributes: efivar.LoadOptionActive, Description: "InitOS B",
		FilePath: efivar.DevicePath{efivar.FilePathNode(`\EFI\Linux\b.efi`)},
	})
	if err != nil {
		return err
	}
	if err := efivar.SetBootOrder(store, append(order, n)); err != nil {
		return err
	}
	if err := efivar.SetBootNext(store, n); err != nil {
		return err
	}
	fmt.Printf("INITOS-SB-NEXT: %s\n", efivar.BootName(n))
	return nil
}

func parseCmdline(s string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}

func enroll(store efivar.Store) error {
	var p [3][]byte
	for i, name := range []string{"db", "KEK", "PK"} {
		b, err := os.ReadFile("/keys/" + name + ".auth")
		if err != nil {
			return err
		}
		p[i] = b
	}
	return efivar.Enroll(store, p[0], p[1], p[2])
}

func report(store efivar.Store, marker string) error {
	st, err := efivar.ReadStatus(store)
	if err != nil {
		return err
	}
	var db []string
	for _, c := range st.DB {
		db = append(db, strings.ReplaceAll(c.Subject.String(), " ", "_"))
	}
	cur, _, err := efivar.BootCurrent(store)
	if err != nil {
		return err
	}
	fmt.Printf("\nINITOS-SB: SecureBoot=%d SetupMode=%d db=%s marker=%s BootCurrent=%04X\n",
		st.SecureBoot, st.SetupMode, strings.Join(db, ","), marker, cur)
	return nil
}
