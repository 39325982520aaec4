package vmtest

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

// Net attaches one NIC on qemu's user-mode network (slirp): the guest gets
// 10.0.2.15/24 by DHCP from qemu, with the gateway 10.0.2.2. restrict=on
// cuts the guest off from everything outside; only the forwarded ports
// connect, from 127.0.0.1 on the host.
type Net struct {
	// Forward lists host ports (on 127.0.0.1) forwarded to guest TCP ports.
	Forward []Forward
	// GuestForward lists host services the guest reaches on
	// GuestForwardIP (e.g. a registry on the host's 127.0.0.1).
	GuestForward []GuestForward
	// Model is the qemu NIC device; default "virtio-net-pci" (its driver,
	// virtio_net, is loaded by the runner, see NetModules).
	Model string
}

// Forward forwards TCP connections to 127.0.0.1:Host on the host to the
// guest's port Guest.
type Forward struct {
	Host  int // host port, e.g. from FreePort
	Guest int // guest port, e.g. 22
}

// NetModules drive the default NIC; the runner loads them (dependencies
// first) when Config.Net is set. AF_PACKET and IPv6 are built into
// Debian's kernel.
var NetModules = []string{"virtio_pci", "virtio_net"}

// Guest addresses of qemu's user network.
const (
	GuestIP   = "10.0.2.15"
	GatewayIP = "10.0.2.2"
)

// FreePort returns a TCP port free on 127.0.0.1 right now, for a Forward.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("vmtest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// netArgs returns the qemu arguments of n (after "-nic none" is dropped).
func netArgs(n *Net) []string {
	netdev := "user,id=net0,restrict=on"
	for _, f := range n.Forward {
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", f.Host, f.Guest)
	}
	for _, f := range n.GuestForward {
		if f.Cmd != "" {
			netdev += fmt.Sprintf(",guestfwd=tcp:%s:%d-cmd:%s", GuestForwardIP, f.Guest, strings.ReplaceAll(f.Cmd, ",", ",,"))
			continue
		}
		netdev += fmt.Sprintf(",guestfwd=tcp:%s:%d-tcp:127.0.0.1:%d", GuestForwardIP, f.Guest, f.Host)
	}
	model := n.Model
	if model == "" {
		model = "virtio-net-pci"
	}
	return []string{"-netdev", netdev, "-device", model + ",netdev=net0"}
}

// withNet replaces "-nic none" in args by n's NIC.
func withNet(args []string, n *Net) []string {
	if n == nil {
		return args
	}
	out := make([]string, 0, len(args)+4)
	for i := 0; i < len(args); i++ {
		if args[i] == "-nic" && i+1 < len(args) && strings.EqualFold(args[i+1], "none") {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return append(out, netArgs(n)...)
}
