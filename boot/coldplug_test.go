package boot

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"initos/kmod"
)

func TestUnboundDevices(t *testing.T) {
	sys := filepath.Join(t.TempDir(), "devices")
	writeFiles(t, sys, map[string]string{
		"pci0000:00/0000:00:02.0/modalias":            "pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00\n",
		"pci0000:00/0000:00:02.0/virtio0/modalias":    "virtio:d00000002v00001AF4\n",
		"pci0000:00/0000:00:1f.0/modalias":            "pci:v00008086d00002918sv00001AF4\n",
		"pci0000:00/0000:00:1f.2/modalias":            "pci:v00008086d00002922\n", // bound below
		"platform/serial8250/modalias":                "platform:serial8250\n",
		"platform/empty/modalias":                     "\n",
		"pci0000:00/0000:00:02.0/virtio0/block/x/dev": "254:0\n",
	})
	if err := os.Symlink("../../../bus/pci/drivers/ahci", filepath.Join(sys, "pci0000:00/0000:00:1f.2/driver")); err != nil {
		t.Fatal(err)
	}
	devs, err := unboundDevices(sys)
	if err != nil {
		t.Fatal(err)
	}
	want := []Device{
		{filepath.Join(sys, "pci0000:00/0000:00:02.0"), "pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00"},
		{filepath.Join(sys, "pci0000:00/0000:00:02.0/virtio0"), "virtio:d00000002v00001AF4"},
		{filepath.Join(sys, "pci0000:00/0000:00:1f.0"), "pci:v00008086d00002918sv00001AF4"},
		{filepath.Join(sys, "platform/serial8250"), "platform:serial8250"},
	}
	if diff := cmp.Diff(want, devs); diff != "" {
		t.Errorf("unboundDevices (-want +got):\n%s", diff)
	}
	seen := map[string]bool{"platform:serial8250": true}
	if got := newAliases(append(devs, devs[0]), seen); len(got) != 3 || got[0] != want[0].Modalias {
		t.Errorf("newAliases = %q, want the 3 unseen aliases once each", got)
	}
	if got := shortDevice(want[1].Path); got != "pci0000:00/0000:00:02.0/virtio0" {
		t.Errorf("shortDevice = %q", got)
	}
	if nf := notFound(devs, []LoadResult{{Name: "platform:serial8250", Err: &kmod.NotFoundError{Name: "platform:serial8250"}}}); len(nf) != 1 || nf[0].Path != want[3].Path {
		t.Errorf("notFound = %v, want the serial device", nf)
	}
}
