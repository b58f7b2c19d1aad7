// Package attacktest holds hostile-input tests against a real gateway: a
// Caddy built from the Portcullis modules, run in the test process on
// 127.0.0.1 with a real Badger store, a real OpenID provider (devidp), a
// real SAML IdP (crewjam's samlidp) and a backend that records every request
// it receives. Each test plays one attack from the outside (forged identity
// headers, SCIM token guessing, open redirects in the return path, session
// fixation, SAML signature wrapping and foreign keys, a session cookie
// carried to another tenant) and checks what the backend and the attacker
// get. The package has no code of its own: only tests.
package attacktest
