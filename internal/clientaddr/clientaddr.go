// Package clientaddr owns how the gateway counts a client by its address,
// for the limits and audit records of refused requests (SCIM token
// guessing, refused sign-ins, refused paths): one place decides what "the
// same client" means, so every limiter agrees.
package clientaddr

import (
	"net"
	"net/netip"
)

// maxKeyLength bounds keys that are not IP addresses (from a configured
// client-address source that returns something else).
const maxKeyLength = 64

// Key is what an address is counted under: the IP address (a port, as in
// r.RemoteAddr, is dropped), with IPv4-mapped IPv6 addresses as IPv4 and
// other IPv6 addresses cut to their /64 (one subscriber's allocation,
// through which an attacker can rotate freely). Anything that is not an IP
// address counts as itself, cut to 64 bytes (and marked so).
func Key(addr string) string {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		if len(host) > maxKeyLength {
			host = host[:maxKeyLength] + "…"
		}
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
