// Package clientaddr turns a client's address into the key that per-client
// limits count under, so that every limiter of the gateway (refused
// sign-ins in sso; SCIM's failed tokens could use it too) treats an address
// the same way.
package clientaddr

import (
	"net"
	"net/netip"
)

// maxKeyLength bounds keys that are not IP addresses (a ClientIP function
// that returns something else).
const maxKeyLength = 64

// Key is what an address's attempts are counted under: the IP address (a
// port, as in r.RemoteAddr, is dropped), with IPv4-mapped IPv6 addresses as
// IPv4 and other IPv6 addresses cut to their /64, one subscriber's
// allocation, through which an attacker can rotate freely. Anything that is
// not an IP address counts as itself, cut to 64 bytes.
func Key(addr string) string {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		if len(host) > maxKeyLength {
			host = host[:maxKeyLength]
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
