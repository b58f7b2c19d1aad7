// Package archtest holds the tests that keep the package layout honest: the
// core (storage, scimhandler, sso, authz and the rest) stays free of Caddy,
// so it can be read, tested and reused as plain net/http code. It has no
// code of its own: only tests.
package archtest
