package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"initos/internal/testenv"
	"initos/tpm2"
	"initos/tpm2/swtpmtest"
)

// TestLuksTPM2SystemdInterop: a token systemd-cryptenroll 252 wrote is
// opened by "initos luks unlock-tpm2", and one "initos luks enroll-tpm2"
// wrote (PCR 7 + PCR 15 bound to a literal zero, the pinned primary and
// the recorded values in initos-* fields) is unsealed by
// systemd-cryptsetup 252 (up to the device-mapper step, which this host
// lacks) while PCR 15 is zero, and refused after it is extended.
func TestLuksTPM2SystemdInterop(t *testing.T) {
	enroll := testenv.Tool(t, "systemd-cryptenroll")
	sw := swtpmtest.StartTCP(t)
	tpmExtend(t, sw, 7, "secure boot on")

	img, key := tpm2Image(t)
	if out, err := exec.Command(enroll, "--unlock-key-file="+key, "--tpm2-device="+sw.Device(), "--tpm2-pcrs=7", img).CombinedOutput(); err != nil {
		t.Fatalf("systemd-cryptenroll: %v\n%s", err, out)
	}
	if _, err := initos("luks", "unlock-tpm2", "--tpm2-device", sw.Device(), img); err != nil {
		t.Errorf("initos luks unlock-tpm2 on systemd's enrollment: %v", err)
	}

	img2, key2 := tpm2Image(t)
	if _, err := initos("luks", "enroll-tpm2", "--efivarfs", fakeEFI(t, 1, 0), "--tpm2-device", sw.Device(),
		"--tpm2-pcrs", "7+15:sha256="+strings.Repeat("0", 64), "--unlock-key-file", key2, img2); err != nil {
		t.Fatal(err)
	}
	log := systemdAttach(t, sw, img2)
	for _, want := range []string{"Completed TPM2 key unsealing", "[keyslot 1] using passphrase"} {
		if !strings.Contains(log, want) {
			t.Errorf("systemd-cryptsetup attach on our enrollment did not log %q:\n%s", want, log)
		}
	}
	tpmExtend(t, sw, 15, "a volume was opened")
	if log := systemdAttach(t, sw, img2); !strings.Contains(log, "policy digest does not match") {
		t.Errorf("systemd-cryptsetup attach after PCR 15 was extended did not refuse:\n%s", log)
	}
}

// systemdAttach runs systemd-cryptsetup attach on img with the swtpm and
// returns its debug log (it fails at the device-mapper step here).
func systemdAttach(t *testing.T, sw *swtpmtest.Swtpm, img string) string {
	t.Helper()
	const bin = "/lib/systemd/systemd-cryptsetup"
	if _, err := os.Stat(bin); err != nil {
		testenv.Missing(t, bin+" not installed (package systemd)")
	}
	flushTPM(t, sw) // systemd-cryptsetup 252 leaves its sessions loaded when dm fails
	cmd := exec.Command(bin, "attach", "initos-cli-interop", img, "-",
		fmt.Sprintf("tpm2-device=swtpm:port=%d,headless=true", sw.Port))
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=debug")
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// flushTPM flushes what earlier clients left loaded (swtpm has no
// resource manager).
func flushTPM(t *testing.T, sw *swtpmtest.Swtpm) {
	t.Helper()
	d, _ := tpm2.ParseDevice(sw.Device())
	tpm, err := tpm2.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer tpm.Close()
	if err := tpm2.FlushAll(tpm); err != nil {
		t.Fatal(err)
	}
}
