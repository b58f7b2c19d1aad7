package caddymodule

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"

	"github.com/portcullis/portcullis/storage"
)

// Retry-After, in seconds, of the admin API's 503s: the same as SCIM's
// (scimhandler/errors.go). While the store is unavailable (the shared
// database cannot be reached) nothing was written half and the same call
// works once it is back; a conflict of concurrent writers clears at once.
const (
	adminRetryAfterUnavailable = 5
	adminRetryAfterConflict    = 1
)

// storeErrorStatus is the admin API's status for a store failure: 503
// when retrying later helps (the store unavailable, a write conflict),
// else 500.
func storeErrorStatus(err error) int {
	if errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrConflict) {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// withRetryAfter sets Retry-After on w when err is a 503 that retrying
// later fixes. Caddy's admin server writes the error after the handler
// returns, keeping the headers already set.
func withRetryAfter(w http.ResponseWriter, err error) error {
	var apiErr caddy.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatus != http.StatusServiceUnavailable {
		return err
	}
	switch {
	case errors.Is(apiErr.Err, storage.ErrUnavailable):
		w.Header().Set("Retry-After", strconv.Itoa(adminRetryAfterUnavailable))
	case errors.Is(apiErr.Err, storage.ErrConflict):
		w.Header().Set("Retry-After", strconv.Itoa(adminRetryAfterConflict))
	}
	return err
}
