package scimhandler

import (
	"time"

	"golang.org/x/crypto/bcrypt"
)

// SetClock makes h's failed-attempt limits read the time from now, so
// tests step through refills and audit windows without sleeping.
func SetClock(h *Handler, now func() time.Time) { h.now = now }

// UseCheapPasswordHashes makes password hashing use bcrypt's minimum cost
// until the returned function restores the default; fuzz targets send
// thousands of passwords.
func UseCheapPasswordHashes() (restore func()) {
	passwordHashCost = bcrypt.MinCost
	return func() { passwordHashCost = bcrypt.DefaultCost }
}
