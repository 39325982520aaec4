// Command enrollinit is the /init of the first boot of a test machine
// (bootdisk.EnrollUKI, EnrollUKIARM64): what the installer does to the
// volumes, without the rest. It loads the virtio modules (and tpm_tis,
// when the initrd has it: arm64) from its initrd, reads the plan
// (report.EnrollPlanPath), measures "enter-initrd" into PCR 11 as
// initos-init does, then for each volume adds a TPM token with the default
// policy (signed PCR 11 by the UKI's .pcrpkey, PCR 7, PCR 15 all-zero)
// and, unless it plays the attacker's, the binding; it prints one
// report.EnrollMarker line and powers off.
package main

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
	"golang.org/x/sys/unix"

	"initos/enroll"
	"initos/internal/bootdisk/report"
	"initos/kmod"
	"initos/luks2"
	"initos/tpm2"
)

func main() {
	err := run()
	if err != nil {
		fmt.Printf("%sERROR %v\n", report.EnrollMarker, err)
	} else {
		fmt.Printf("%sOK\n", report.EnrollMarker)
	}
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

func run() error {
	for _, m := range [][3]string{{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"}} {
		os.MkdirAll(m[1], 0o755)
		if err := unix.Mount(m[0], m[1], m[2], 0, ""); err != nil {
			return fmt.Errorf("mount %s: %w", m[1], err)
		}
	}
	var u unix.Utsname
	unix.Uname(&u)
	ix, err := kmod.Open(filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:])))
	if err != nil {
		return err
	}
	if err := ix.LoadAll("virtio_pci", "virtio_blk"); err != nil {
		return err
	}
	// arm64: the TPM on qemu's system bus needs tpm_tis, a module there
	// (built in on x86-64, where the initrd does not ship it).
	if _, err := ix.Resolve("tpm_tis"); err == nil {
		if err := ix.LoadAll("tpm_tis"); err != nil {
			return err
		}
	}
	var plan report.EnrollPlan
	b, err := os.ReadFile(report.EnrollPlanPath)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &plan); err != nil {
		return err
	}
	return enrollAll(plan)
}

func enrollAll(plan report.EnrollPlan) error {
	for i := 0; i < 100 && !exists(tpm2.DefaultDevice); i++ {
		time.Sleep(50 * time.Millisecond) // a TPM module probes as it loads, but allow for slack
	}
	t, err := tpm2.Open(tpm2.Device{})
	if err != nil {
		return err
	}
	defer t.Close()
	d := sha256.Sum256([]byte("enter-initrd"))
	if err := tpm2.ExtendPCR(t, tpm2.SHA256, 11, d[:]); err != nil {
		return err
	}
	sig, err := os.ReadFile("/.extra/tpm2-pcr-signature.json")
	if err != nil {
		return fmt.Errorf("systemd-stub passed no .pcrsig: %w", err)
	}
	keyPEM, err := os.ReadFile("/.extra/tpm2-pcr-public-key.pem")
	if err != nil {
		return err
	}
	pub, err := tpm2.ParsePublicKeyPEM(keyPEM)
	if err != nil {
		return err
	}
	for _, v := range plan.Volumes {
		if err := enrollOne(t, v, pub, sig); err != nil {
			return fmt.Errorf("%s: %w", v.Device, err)
		}
	}
	return nil
}

func enrollOne(t transport.TPM, v report.EnrollVolume, pub *rsa.PublicKey, sig []byte) error {
	for i := 0; i < 200 && !exists(v.Device); i++ {
		time.Sleep(50 * time.Millisecond) // virtio probes asynchronously
	}
	f, err := os.OpenFile(v.Device, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	h, err := luks2.ReadHeader(f)
	if err != nil {
		return err
	}
	vk, _, err := h.Unlock(f, []byte(v.Pass))
	if err != nil {
		return err
	}
	defer vk.Destroy()
	if _, err := enroll.Enroll(t, f, h, vk, enroll.DefaultPolicy(pub)); err != nil {
		return err
	}
	if v.Bind {
		if _, err := enroll.Bind(t, f, h, vk, pub, sig); err != nil {
			return err
		}
	}
	fmt.Printf("enrolled %s (LUKS %s), bound %v\n", v.Device, h.UUID(), v.Bind)
	return f.Sync()
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }
