package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
)

// Network is the network BringUp configured. Close stops the DHCP lease
// renewals (addresses stay).
type Network struct {
	Links  []LinkState
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Close stops the background DHCP renewals.
func (n *Network) Close() {
	n.cancel()
	n.wg.Wait()
}

// BringUp configures the network with netlink: loopback up, the wanted
// Ethernet links up (IPv6 on, so the kernel adds link-local and SLAAC
// addresses itself), then DHCPv4 or the static address. Every wait is
// bounded by cfg.Timeout and ctx. It fails when no link could be brought
// up or, with DHCP or static, when no link got an address.
func BringUp(ctx context.Context, cfg NetConfig, logf func(string, ...any)) (*Network, error) {
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if lo, err := netlink.LinkByName("lo"); err == nil {
		netlink.LinkSetUp(lo)
	}
	links, err := upLinks(cfg, logf)
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	n := &Network{cancel: cancel}
	waitCarrier(ctx, links, cfg.Timeout)
	switch cfg.Mode {
	case "static":
		n.Links = []LinkState{staticUp(links[0], cfg, logf)}
	case "dhcp":
		n.Links = n.dhcpAll(ctx, bg, links, cfg, logf)
	default:
		for _, l := range links {
			n.Links = append(n.Links, LinkState{Name: l.Attrs().Name, MAC: l.Attrs().HardwareAddr.String()})
		}
		return n, nil
	}
	for _, l := range n.Links {
		if l.Err == "" {
			return n, nil
		}
	}
	n.Close()
	return nil, fmt.Errorf("control: network: no link got an address: %s", linkErrors(n.Links))
}

func linkErrors(ls []LinkState) string {
	var s string
	for i, l := range ls {
		if i > 0 {
			s += "; "
		}
		s += l.Name + ": " + l.Err
	}
	return s
}

// upLinks brings the wanted links up, with IPv6 enabled.
func upLinks(cfg NetConfig, logf func(string, ...any)) ([]netlink.Link, error) {
	all, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("control: network: list links: %w", err)
	}
	var up []netlink.Link
	for _, l := range all {
		a := l.Attrs()
		if !cfg.wanted(a.Name, a.HardwareAddr, a.Flags&net.FlagLoopback != 0) || l.Type() != "device" {
			continue
		}
		// The kernel makes the link-local (and, with router adverts,
		// SLAAC) addresses itself once IPv6 is on and the link is up.
		os.WriteFile("/proc/sys/net/ipv6/conf/"+a.Name+"/disable_ipv6", []byte("0"), 0)
		if err := netlink.LinkSetUp(l); err != nil {
			logf("control: network: %s: link up: %v", a.Name, err)
			continue
		}
		logf("control: network: %s (%s) up", a.Name, a.HardwareAddr)
		up = append(up, l)
	}
	if len(up) == 0 {
		return nil, fmt.Errorf("control: network: no Ethernet link to bring up (of %d links; wanted %q)", len(all), cfg.Interfaces)
	}
	return up, nil
}

// waitCarrier waits, bounded, until every link reports a carrier.
func waitCarrier(ctx context.Context, links []netlink.Link, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for _, l := range links {
		for time.Now().Before(deadline) && ctx.Err() == nil {
			cur, err := netlink.LinkByIndex(l.Attrs().Index)
			if err != nil || cur.Attrs().RawFlags&0x10000 != 0 { // IFF_LOWER_UP
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// staticUp puts the static address (and default route) on link l.
func staticUp(l netlink.Link, cfg NetConfig, logf func(string, ...any)) LinkState {
	st := LinkState{Name: l.Attrs().Name, MAC: l.Attrs().HardwareAddr.String(), Via: "static"}
	s, _ := cfg.parseStatic()
	if err := addAddr(l, s.prefix, s.gateway); err != nil {
		st.Err = err.Error()
		return st
	}
	st.Addrs = []string{s.prefix.String()}
	logf("control: network: %s: static %s gateway %v", st.Name, s.prefix, s.gateway)
	return st
}

// addAddr adds prefix to l and, when gw is valid, a default route via gw.
func addAddr(l netlink.Link, prefix netip.Prefix, gw netip.Addr) error {
	a := &netlink.Addr{IPNet: &net.IPNet{IP: prefix.Addr().AsSlice(), Mask: net.CIDRMask(prefix.Bits(), prefix.Addr().BitLen())}}
	if err := netlink.AddrReplace(l, a); err != nil {
		return fmt.Errorf("add address %s: %w", prefix, err)
	}
	if !gw.IsValid() {
		return nil
	}
	r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice()}
	if err := netlink.RouteReplace(r); err != nil {
		return fmt.Errorf("default route via %s: %w", gw, err)
	}
	return nil
}

// dhcpAll runs DHCPv4 on every link at once.
func (n *Network) dhcpAll(ctx, bg context.Context, links []netlink.Link, cfg NetConfig, logf func(string, ...any)) []LinkState {
	states := make([]LinkState, len(links))
	var wg sync.WaitGroup
	for i, l := range links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			states[i] = n.dhcp(ctx, bg, l, cfg.Timeout, logf)
		}()
	}
	wg.Wait()
	return states
}

// dhcp gets and applies a lease on l, then renews it in the background.
func (n *Network) dhcp(ctx, bg context.Context, l netlink.Link, timeout time.Duration, logf func(string, ...any)) LinkState {
	name := l.Attrs().Name
	st := LinkState{Name: name, MAC: l.Attrs().HardwareAddr.String(), Via: "dhcp"}
	c, err := nclient4.New(name, nclient4.WithTimeout(timeout/4), nclient4.WithRetry(3))
	if err != nil {
		st.Err = fmt.Sprintf("dhcp: %v", err)
		return st
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	lease, err := c.Request(ctx)
	cancel()
	if err == nil {
		st.Addrs, err = applyLease(l, lease)
	}
	if err != nil {
		c.Close()
		st.Err = fmt.Sprintf("dhcp: %v", err)
		logf("control: network: %s: %s", name, st.Err)
		return st
	}
	logf("control: network: %s: dhcp %s router %v lease %v", name, st.Addrs[0], lease.ACK.Router(), lease.ACK.IPAddressLeaseTime(0))
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer c.Close()
		renew(bg, c, l, lease, logf)
	}()
	return st
}

// applyLease puts the leased address and default route on l.
func applyLease(l netlink.Link, lease *nclient4.Lease) ([]string, error) {
	ack := lease.ACK
	p, err := prefixOf(ack.YourIPAddr, ack.SubnetMask())
	if err != nil {
		return nil, err
	}
	var gw netip.Addr
	if r := ack.Router(); len(r) > 0 {
		gw, _ = netip.AddrFromSlice(r[0].To4())
	}
	if err := addAddr(l, p, gw); err != nil {
		return nil, err
	}
	return []string{p.String()}, nil
}

// renew keeps the lease alive until ctx ends.
func renew(ctx context.Context, c *nclient4.Client, l netlink.Link, lease *nclient4.Lease, logf func(string, ...any)) {
	for {
		d := lease.ACK.IPAddressLeaseTime(time.Hour)
		select {
		case <-ctx.Done():
			return
		case <-time.After(renewAfter(d)):
		}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		next, err := c.Renew(rctx, lease)
		if errors.Is(err, context.DeadlineExceeded) || next == nil {
			next, err = c.Request(rctx, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(lease.ACK.YourIPAddr)))
		}
		cancel()
		if err != nil {
			logf("control: network: %s: dhcp renew: %v", l.Attrs().Name, err)
			continue
		}
		if _, err := applyLease(l, next); err != nil {
			logf("control: network: %s: dhcp renew: %v", l.Attrs().Name, err)
		}
		lease = next
	}
}
