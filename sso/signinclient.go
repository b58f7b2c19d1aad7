package sso

import (
	"net"
	"net/http"
	"unicode/utf8"

	"github.com/portcullis/portcullis/storage"
)

// signInClient is what a session records of the client that signed in, for
// an operator listing sessions: its address as the tenant config gives it
// (ClientIP, which honours trusted proxies; else the connection's host) and
// its User-Agent, each cut to the store's bound.
func (s *Service) signInClient(r *http.Request) (addr, userAgent string) {
	if s.cfg.ClientIP != nil {
		addr = s.cfg.ClientIP(r)
	}
	if addr == "" {
		addr = r.RemoteAddr
		if host, _, err := net.SplitHostPort(addr); err == nil {
			addr = host
		}
	}
	return clipValid(addr, storage.MaxClientAddrLen), clipValid(r.UserAgent(), storage.MaxUserAgentLen)
}

// clipValid cuts s to at most n bytes on a rune boundary and drops control
// characters, so a hostile User-Agent cannot garble an operator's page.
func clipValid(s string, n int) string {
	out := make([]rune, 0, min(len(s), n))
	size := 0
	for _, r := range s {
		if r < 0x20 || r == 0x7F || r == utf8.RuneError {
			continue
		}
		if size+utf8.RuneLen(r) > n {
			break
		}
		size += utf8.RuneLen(r)
		out = append(out, r)
	}
	return string(out)
}
