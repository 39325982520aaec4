//go:build vmguest

package control

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/crypto/ssh"
)

// Files the host test ships into the guest.
const (
	guestHostKey        = guestHostKeyPath
	guestAuthorizedKeys = guestAuthorizedKeysPath
)

// TestGuestServeDHCP brings the network up with DHCP from qemu's user net
// and serves SSH until the host's client runs poweroff.
func TestGuestServeDHCP(t *testing.T) { guestServe(t, NetConfig{}) }

// TestGuestServeStatic does the same with the static address.
func TestGuestServeStatic(t *testing.T) {
	flushIPv4(t)
	guestServe(t, NetConfig{Mode: "static", Address: "10.0.2.15/24", Gateway: "10.0.2.2"})
}

func guestServe(t *testing.T, nc NetConfig) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	n, err := BringUp(ctx, nc, t.Logf)
	if err != nil {
		t.Fatalf("BringUp(%+v): %v", nc, err)
	}
	defer n.Close()
	t.Logf("network up in %v: %+v", time.Since(start).Round(time.Millisecond), n.Links)
	if len(n.Links) != 1 || len(n.Links[0].Addrs) != 1 || n.Links[0].Addrs[0] != "10.0.2.15/24" {
		t.Errorf("BringUp links = %+v, want one link with 10.0.2.15/24", n.Links)
	}
	checkLinkLocal(t, n.Links[0].Name)
	hk, err := os.ReadFile(guestHostKey)
	if err != nil {
		t.Fatal(err)
	}
	host, err := ssh.ParsePrivateKey(hk)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := os.ReadFile(guestAuthorizedKeys)
	if err != nil {
		t.Fatal(err)
	}
	b := newFakeBackend()
	s, err := NewServer(Config{HostKey: host, AuthorizedKeys: strings.Split(strings.TrimSpace(string(keys)), "\n"), Logf: t.Logf}, b)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	sctx, stop := context.WithCancel(ctx)
	go func() { done <- s.ListenAndServe(sctx) }()
	select {
	case what := <-b.power:
		t.Logf("the host ran %s", what)
	case <-ctx.Done():
		t.Error("the host never ran poweroff")
	case err := <-done:
		t.Fatalf("ListenAndServe: %v", err)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("ListenAndServe after stop: %v", err)
	}
}

// checkLinkLocal waits (bounded) for the kernel's IPv6 link-local address.
func checkLinkLocal(t *testing.T, name string) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_V6)
		for _, a := range addrs {
			if a.IP.IsLinkLocalUnicast() {
				t.Logf("%s: IPv6 link-local %s", name, a.IPNet)
				return
			}
		}
	}
	t.Errorf("%s: no IPv6 link-local address", name)
}

// flushIPv4 removes the IPv4 addresses a previous test left.
func flushIPv4(t *testing.T) {
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
		for _, a := range addrs {
			if !a.IP.Equal(net.IPv4(127, 0, 0, 1)) {
				netlink.AddrDel(l, &a)
			}
		}
	}
}
