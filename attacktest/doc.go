// Package attacktest holds hostile-input tests against a real gateway: a
// Caddy built from the Portcullis modules, run in the test process on
// 127.0.0.1 with a real Badger store, a real OpenID provider (devidp), a
// real SAML IdP (crewjam's samlidp) and a backend that records every request
// it receives. Each test plays one attack from the outside (forged identity
// headers, SCIM token guessing, open redirects in the return path, session
// fixation, SAML signature wrapping and foreign keys, a session cookie
// carried to another tenant) and checks what the backend and the attacker
// get. The trust-boundary attacks run against a gateway of their own
// (boundary_test.go) with backends that show what got through: h2c and
// unknown-protocol upgrades smuggled past an identity route (an h2c
// backend that switches on Upgrade: h2c alone), WebSocket and SSE streams
// that must end within a second of any revocation (SCIM deactivation and
// deletion, sign-out, group and role loss, the IdP's session end), request
// paths a servlet-style backend reads differently from Caddy's matchers
// (;parameters, backslashes, control bytes, dot and space segments), the
// gateway's cookies reaching the backend (a raw-bytes backend), and
// control characters in names fed to header_up through placeholders.
// Each attack has a control that shows the test can see it succeed. The
// package has no code of its own: only tests.
package attacktest
