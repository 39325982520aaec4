// Command rootinit is the /sbin/init of the test roots that bootdisk puts
// on encrypted disks: it reports, on the console, what a root booted by
// initos-init sees (mounts, the modules and firmware of the verified
// image, PCRs 7, 11, 15, whether the TPM would unseal a disk key again,
// the initrd's kernel log lines), then powers off.
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"initos/enroll"
	"initos/internal/bootdisk/report"
	"initos/luks2"
	"initos/tpm2"
)

func main() {
	r := &report.Report{Mounts: map[string]report.Mount{}, PCRs: map[int]string{}}
	r.Uptime = uptime()
	var cfg report.Config
	if b, err := os.ReadFile(report.ConfigPath); err == nil {
		json.Unmarshal(b, &cfg)
	}
	r.Name = cfg.Name
	var u unix.Utsname
	unix.Uname(&u)
	r.Release = unix.ByteSliceToString(u.Release[:])
	fail := func(err error) { r.Errors = append(r.Errors, err.Error()) }
	if err := mounts(r); err != nil {
		fail(err)
	}
	_, err := os.Stat(filepath.Join("/lib/modules", r.Release, "modules.dep"))
	r.ModulesDep = err == nil
	_, err = os.Stat("/lib/firmware/initos-test-firmware.txt")
	r.Firmware = err == nil
	r.BtrfsDevices = btrfsDevices()
	r.BtrfsProfiles = btrfsProfiles()
	tpmChecks(r, &cfg, fail)
	r.Kmsg = initrdLog()
	out, _ := json.Marshal(r)
	fmt.Printf("\n%s%s\n", report.Marker, out)
	if cfg.Name == "attacker" {
		fmt.Println("ATTACKER ROOT BOOTED")
	}
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

func uptime() float64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// mounts reads /proc/self/mountinfo.
func mounts(r *report.Report) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		if !ok || len(a) < 5 || len(b) < 3 {
			continue
		}
		r.Mounts[a[4]] = report.Mount{Root: a[3], Point: a[4], FSType: b[0], Source: b[1], Options: b[2]}
	}
	return sc.Err()
}

// btrfsDevices counts the devices of the (only) mounted btrfs
// filesystem, the root: 2 for a raid1 over two LUKS volumes.
func btrfsDevices() int {
	fss, _ := filepath.Glob("/sys/fs/btrfs/*/devices")
	if len(fss) != 1 {
		return -len(fss)
	}
	devs, _ := filepath.Glob(filepath.Join(fss[0], "*"))
	return len(devs)
}

// btrfsProfiles lists the block group profiles of the (only) mounted
// btrfs filesystem by kind, from sysfs: allocation/<kind>/<profile>/
// exists for every profile that has block groups.
func btrfsProfiles() map[string][]string {
	m := map[string][]string{}
	for _, kind := range []string{"data", "metadata", "system"} {
		dirs, _ := filepath.Glob(filepath.Join("/sys/fs/btrfs/*/allocation", kind, "*"))
		for _, d := range dirs {
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				m[kind] = append(m[kind], filepath.Base(d))
			}
		}
	}
	return m
}

// tpmChecks reads the PCRs and tries to unseal each LUKS volume's key
// again: from a root, that must fail.
func tpmChecks(r *report.Report, cfg *report.Config, fail func(error)) {
	t, err := tpm2.Open(tpm2.Device{})
	if err != nil {
		fail(err)
		return
	}
	defer t.Close()
	if pcrs, err := tpm2.ReadPCRs(t, tpm2.SHA256, []int{7, 11, 15}); err == nil {
		for i, v := range pcrs {
			r.PCRs[i] = hex.EncodeToString(v)
		}
	}
	for _, dev := range cfg.LUKS {
		r.Unseal = append(r.Unseal, tryUnseal(t, dev, []byte(cfg.PCRSig)))
	}
}

func tryUnseal(t interface{ Send([]byte) ([]byte, error) }, dev string, sig []byte) string {
	f, err := os.Open(dev)
	if err != nil {
		return "error: " + err.Error()
	}
	defer f.Close()
	h, err := luks2.ReadHeader(f)
	if err != nil {
		return "error: " + err.Error()
	}
	vk, _, err := enroll.Unlock(t, f, h, enroll.UnlockOptions{Signature: sig})
	if err != nil {
		return "refused: " + err.Error()
	}
	vk.Destroy()
	return "UNSEALED"
}

// initrdLog returns the kernel log lines of initos-init, with the
// kernel's timestamps: "[  2.345678] initos: ...".
func initrdLog() []string {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	var out []string
	buf := make([]byte, 16<<10)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EPIPE {
			continue
		}
		if err != nil || n <= 0 {
			return out
		}
		prefix, msg, ok := strings.Cut(string(buf[:n]), ";")
		msg, _, _ = strings.Cut(msg, "\n")
		f := strings.Split(prefix, ",")
		if !ok || len(f) < 3 || !strings.HasPrefix(msg, "initos: ") {
			continue
		}
		usec, _ := strconv.ParseInt(f[2], 10, 64)
		out = append(out, fmt.Sprintf("[%5d.%06d] %s", usec/1e6, usec%1e6, msg))
	}
}
