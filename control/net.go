package control

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// NetConfig says how the initrd reaches the network. Its zero value is
// DHCPv4 on every Ethernet link, with IPv6 link-local/SLAAC addresses
// configured by the kernel.
type NetConfig struct {
	// Mode is "dhcp" (default), "static" or "none" (links up, IPv6 only).
	Mode string `json:"mode,omitempty"`
	// Interfaces names the links to use; empty: every Ethernet link.
	Interfaces []string `json:"interfaces,omitempty"`
	// Address (static) is the IPv4 or IPv6 address with its prefix length,
	// e.g. "192.0.2.10/24"; it goes on the first link.
	Address string `json:"address,omitempty"`
	// Gateway (static, optional) is the default route's next hop.
	Gateway string `json:"gateway,omitempty"`
	// Timeout bounds the wait for a carrier and for a DHCP lease; default
	// 30s. The DHCP lease is then renewed in the background.
	Timeout time.Duration `json:"timeout,omitempty"`
}

const defaultNetTimeout = 30 * time.Second

// LinkState is what BringUp did on one link.
type LinkState struct {
	Name  string   `json:"name"`
	MAC   string   `json:"mac"`
	Addrs []string `json:"addrs,omitempty"` // addresses configured by us (CIDR)
	Via   string   `json:"via,omitempty"`   // "dhcp" or "static"
	Err   string   `json:"error,omitempty"` // why no address came
}

// staticAddr is a parsed static configuration.
type staticAddr struct {
	prefix  netip.Prefix
	gateway netip.Addr // invalid: no default route
}

func (c NetConfig) withDefaults() NetConfig {
	setDefault(&c.Mode, "dhcp")
	setDefault(&c.Timeout, defaultNetTimeout)
	return c
}

// parseStatic checks the static part of c.
func (c NetConfig) parseStatic() (staticAddr, error) {
	var s staticAddr
	p, err := netip.ParsePrefix(c.Address)
	if err != nil {
		return s, fmt.Errorf("control: network: static address %q: %w", c.Address, err)
	}
	s.prefix = p
	if c.Gateway != "" {
		if s.gateway, err = netip.ParseAddr(c.Gateway); err != nil {
			return s, fmt.Errorf("control: network: gateway %q: %w", c.Gateway, err)
		}
		if s.gateway.Is4() != p.Addr().Is4() {
			return s, fmt.Errorf("control: network: gateway %s and address %s are not of one IP version", s.gateway, p)
		}
	}
	return s, nil
}

func (c NetConfig) check() error {
	switch c.Mode {
	case "dhcp", "none":
		return nil
	case "static":
		_, err := c.parseStatic()
		return err
	}
	return fmt.Errorf("control: network: mode %q: want dhcp, static or none", c.Mode)
}

// wanted reports whether a link named name with hardware address mac is
// one to bring up: an Ethernet link, named by c.Interfaces if set.
func (c NetConfig) wanted(name string, mac net.HardwareAddr, loopback bool) bool {
	if loopback || len(mac) != 6 {
		return false
	}
	if len(c.Interfaces) == 0 {
		return true
	}
	for _, n := range c.Interfaces {
		if n == name {
			return true
		}
	}
	return false
}

// prefixOf turns an IPv4 address and netmask from a lease into a prefix.
func prefixOf(ip net.IP, mask net.IPMask) (netip.Prefix, error) {
	a, ok := netip.AddrFromSlice(ip.To4())
	if !ok {
		return netip.Prefix{}, fmt.Errorf("lease address %v is not IPv4", ip)
	}
	if mask == nil {
		mask = net.IPv4Mask(255, 255, 255, 0)
	}
	ones, bits := mask.Size()
	if bits != 32 {
		return netip.Prefix{}, fmt.Errorf("lease netmask %v is not a valid IPv4 mask", mask)
	}
	return netip.PrefixFrom(a, ones), nil
}

// renewAfter is when to renew a lease of duration d (T1 = d/2), bounded
// to [30s, 12h].
func renewAfter(d time.Duration) time.Duration {
	return min(max(d/2, 30*time.Second), 12*time.Hour)
}
