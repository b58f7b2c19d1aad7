package authz

import (
	"net/http"
	"strings"
)

// Only WebSocket may change a request's protocol on an identity route. Any
// other upgrade is removed from the request before it goes on, so it is
// served as plain HTTP/1.1 (RFC 9110 §7.8 lets a server ignore Upgrade).
//
// Why: after a 101 the proxy turns the connection into a raw tunnel. With
// "Upgrade: h2c" and a backend that honours it on Upgrade alone (hypercorn
// does), every later HTTP/2 request on that connection reaches the backend
// with whatever identity headers the client writes, to any path, past
// Caddy's routing and this gate. A WebSocket tunnel is different: its
// frames are not HTTP requests a backend would read identity from, and it
// is closed when the session loses access (see liveRequests).
//
// Stripping rather than refusing keeps well-behaved clients working: a
// client that offers h2c falls back to HTTP/1.1 when the server does not
// switch, as the RFC says it must.

// hopByHopUpgradeHeaders are removed with a refused upgrade: the offer
// itself and its HTTP/2 settings (RFC 7540 §3.2.1).
var hopByHopUpgradeHeaders = []string{"Upgrade", "Http2-Settings"}

// upgradeVerdict is what filterUpgrade decided.
type upgradeVerdict int

const (
	upgradeNone      upgradeVerdict = iota // no upgrade asked for
	upgradeWebSocket                       // a WebSocket upgrade, passed on
	upgradeStripped                        // another upgrade, removed
	tunnelRefused                          // a CONNECT tunnel that is not a WebSocket: refuse
)

// filterUpgrade lets a WebSocket upgrade through and removes any other. A
// WebSocket upgrade is a GET whose Upgrade header is exactly the one token
// "websocket" (any case), or an HTTP/2 or HTTP/3 extended CONNECT (RFC
// 8441) whose :protocol is websocket. A CONNECT of any other kind would be
// a tunnel: the caller refuses it.
func filterUpgrade(r *http.Request) upgradeVerdict {
	return filterScannedUpgrade(r, true)
}

// filterScannedUpgrade is filterUpgrade for a request whose header keys
// were scanned already: offered says whether an Upgrade or HTTP2-Settings
// header is present (headerScan.upgrade). Without one, only the method is
// looked at.
func filterScannedUpgrade(r *http.Request, offered bool) upgradeVerdict {
	if r.Method == http.MethodConnect {
		// As Caddy's reverse_proxy recognises an extended CONNECT (and
		// turns it into an HTTP/1.1 WebSocket upgrade): HTTP/2 carries the
		// protocol in the :protocol pseudo-header, quic-go's HTTP/3 in
		// r.Proto. Anything else would reach the proxy as a tunnel.
		if (r.ProtoMajor == 2 && r.Header.Get(":protocol") == "websocket") ||
			(r.ProtoMajor == 3 && r.Proto == "websocket") {
			return upgradeWebSocket
		}
		return tunnelRefused
	}
	if !offered {
		return upgradeNone
	}
	return filterOfferedUpgrade(r)
}

// filterOfferedUpgrade decides on the Upgrade offer of a request that is
// not a CONNECT.
func filterOfferedUpgrade(r *http.Request) upgradeVerdict {
	h := r.Header
	var offered []string
	var settings bool
	for key, values := range h {
		switch {
		case strings.EqualFold(key, "Upgrade"):
			offered = append(offered, values...)
		case strings.EqualFold(key, "Http2-Settings"):
			settings = true
		}
	}
	if offered == nil && !settings {
		return upgradeNone
	}
	if !settings && r.Method == http.MethodGet && len(offered) == 1 && strings.EqualFold(strings.TrimSpace(offered[0]), "websocket") {
		return upgradeWebSocket
	}
	for key := range h {
		for _, drop := range hopByHopUpgradeHeaders {
			if strings.EqualFold(key, drop) {
				delete(h, key)
			}
		}
	}
	removeConnectionTokens(h, func(token string) bool {
		return strings.EqualFold(token, "upgrade") || strings.EqualFold(token, "http2-settings")
	})
	return upgradeStripped
}

// removeConnectionTokens removes the tokens drop matches from every
// Connection header (under any key spelling), deleting a header left empty.
func removeConnectionTokens(h http.Header, drop func(token string) bool) {
	for key, values := range h {
		if !strings.EqualFold(key, "Connection") {
			continue
		}
		if !anyConnectionToken(values, drop) {
			// The usual case ("keep-alive"): nothing to rewrite, and no
			// allocation to find it out.
			continue
		}
		kept := values[:0:0]
		changed := false
		for _, v := range values {
			var tokens []string
			for _, t := range strings.Split(v, ",") {
				if t = strings.TrimSpace(t); t == "" || drop(t) {
					changed = true
					continue
				}
				tokens = append(tokens, t)
			}
			if len(tokens) > 0 {
				kept = append(kept, strings.Join(tokens, ", "))
			}
		}
		if !changed {
			continue
		}
		if len(kept) == 0 {
			delete(h, key)
		} else {
			h[key] = kept
		}
	}
}

// anyConnectionToken says whether drop matches a token of the Connection
// values, or a value holds an empty token (which the rewrite drops too).
func anyConnectionToken(values []string, drop func(token string) bool) bool {
	for _, v := range values {
		for rest := v; ; {
			t, more, found := strings.Cut(rest, ",")
			if t = strings.TrimSpace(t); t == "" || drop(t) {
				return true
			}
			if !found {
				break
			}
			rest = more
		}
	}
	return false
}
