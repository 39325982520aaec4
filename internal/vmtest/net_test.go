package vmtest

import (
	"slices"
	"strings"
	"testing"
)

func TestWithNet(t *testing.T) {
	base := []string{"-m", "1024", "-nic", "none", "-monitor", "none"}
	if got := withNet(base, nil); !slices.Equal(got, base) {
		t.Errorf("withNet(nil) = %q, want the arguments unchanged", got)
	}
	got := strings.Join(withNet(base, &Net{Forward: []Forward{{Host: 2222, Guest: 22}, {Host: 8080, Guest: 80}}}), " ")
	want := "-m 1024 -monitor none -netdev user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:127.0.0.1:8080-:80 -device virtio-net-pci,netdev=net0"
	if got != want {
		t.Errorf("withNet = %q\nwant %q", got, want)
	}
	if got := strings.Join(withNet(base, &Net{Model: "e1000"}), " "); !strings.HasSuffix(got, "-device e1000,netdev=net0") || strings.Contains(got, "-nic") {
		t.Errorf("withNet(e1000) = %q, want an e1000 device and no -nic none", got)
	}
}

func TestFreePort(t *testing.T) {
	if p := FreePort(t); p <= 0 || p > 65535 {
		t.Errorf("FreePort() = %d, want a port", p)
	}
}
