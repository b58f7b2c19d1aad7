package sso

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
)

// The gateway's cookies for a tenant whose session cookie is named N (the
// configured CookieName, default "portcullis_session"):
//
//	N                 the session cookie on plain HTTP
//	__Host-N          the session cookie on HTTPS
//	N_flow_<tag>      a sign-in in progress on plain HTTP (Path <prefix>/)
//	__Host-N_flow_<tag> a sign-in in progress on HTTPS (Path /)
//
// <tag> is 12 hex digits of the SHA-256 of the flow's state (OIDC) or
// RelayState (SAML), so several sign-ins can be in progress in parallel
// tabs, each callback finding its own cookie. A request is on HTTPS when it
// arrived over TLS, or when the tenant's external URL is https (TLS
// terminated in front of the gateway).

// hostPrefix is the cookie name prefix browsers accept only from a secure
// origin, with Path=/ and no Domain: no sibling subdomain, parent domain,
// other path or plain-HTTP response can set a cookie of that name.
const hostPrefix = "__Host-"

// flowCookieInfix separates the session cookie name from a flow's tag.
const flowCookieInfix = "_flow_"

// secure says whether the browser reached the gateway over HTTPS for r.
func (s *Service) secure(r *http.Request) bool {
	return r.TLS != nil || s.httpsExternal
}

// cookieName is name with the __Host- prefix when r is on HTTPS, unless
// the operator already chose a prefixed name.
func (s *Service) cookieName(r *http.Request, name string) string {
	if s.secure(r) {
		return secureCookieName(name)
	}
	return name
}

// secureCookieName is name as set on HTTPS.
func secureCookieName(name string) string {
	if !strings.HasPrefix(name, hostPrefix) && !strings.HasPrefix(name, "__Secure-") {
		return hostPrefix + name
	}
	return name
}

// sessionCookieName is the session cookie's name for r. Both spellings are
// computed once (Prepare): every proxied request reads it.
func (s *Service) sessionCookieName(r *http.Request) string {
	if !s.secure(r) {
		return s.cfg.Session.CookieName
	}
	if s.sessionNameSecure != "" {
		return s.sessionNameSecure
	}
	return secureCookieName(s.cfg.Session.CookieName) // a Service not made by Prepare

}

// flowCookieName is the name of the cookie holding the flow whose state
// (or RelayState) is state.
func (s *Service) flowCookieName(r *http.Request, state string) string {
	h := sha256.Sum256([]byte(state))
	return s.cookieName(r, s.cfg.Session.CookieName+flowCookieInfix+hex.EncodeToString(h[:6]))
}

// flowCookiePath is where a flow cookie is sent: only to the sign-in
// endpoints on plain HTTP; on HTTPS the __Host- prefix requires Path=/.
func (s *Service) flowCookiePath(r *http.Request, prefix string) string {
	if s.secure(r) {
		return "/"
	}
	return prefix + "/"
}

// OwnsCookie says whether name is a cookie the gateway itself sets for this
// tenant: the session cookie, plain or __Host- prefixed, and every sign-in
// flow cookie (the session cookie name followed by "_flow_", plain or
// prefixed). The protecting handler removes these before a request goes to
// the backend. It does not allocate.
func (s *Service) OwnsCookie(name string) bool {
	base := s.cfg.Session.CookieName
	if ownsName(name, base) {
		return true
	}
	rest, ok := strings.CutPrefix(name, hostPrefix)
	return ok && ownsName(rest, base)
}

// ownsName: name is base, or base followed by the flow infix.
func ownsName(name, base string) bool {
	rest, ok := strings.CutPrefix(name, base)
	return ok && (rest == "" || strings.HasPrefix(rest, flowCookieInfix))
}
