package scimhandler

import "time"

// SetClock makes h's failed-attempt limits read the time from now, so
// tests step through refills and audit windows without sleeping.
func SetClock(h *Handler, now func() time.Time) { h.now = now }
