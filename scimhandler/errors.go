package scimhandler

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/portcullis/portcullis/storage"
)

// SCIM message schema URNs (RFC 7644 §3.12, §3.4.2). PatchOp and
// SearchRequest bodies are read whatever their "schemas" say: clients
// differ there, and the body's shape tells what it is.
const (
	schemaError        = "urn:ietf:params:scim:api:messages:2.0:Error"
	schemaListResponse = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
)

// scimType values named by RFC 7644 §3.12.
const (
	scimTypeUniqueness    = "uniqueness"
	scimTypeInvalidFilter = "invalidFilter"
	scimTypeInvalidSyntax = "invalidSyntax"
	scimTypeInvalidValue  = "invalidValue"
	scimTypeInvalidPath   = "invalidPath"
	scimTypeNoTarget      = "noTarget"
	scimTypeMutability    = "mutability"
	scimTypeTooMany       = "tooMany"
)

const contentTypeSCIM = "application/scim+json"

// scimError is an error answered to the client as an RFC 7644 §3.12 body.
type scimError struct {
	status   int
	scimType string
	detail   string
	// retryAfter, when > 0, is sent as a Retry-After header (seconds).
	retryAfter int
	// allow, when set, is sent as an Allow header (405 answers).
	allow string
}

func (e *scimError) Error() string {
	if e.scimType != "" {
		return fmt.Sprintf("scim %d %s: %s", e.status, e.scimType, e.detail)
	}
	return fmt.Sprintf("scim %d: %s", e.status, e.detail)
}

func errBadRequest(scimType, format string, args ...any) *scimError {
	return &scimError{status: http.StatusBadRequest, scimType: scimType, detail: fmt.Sprintf(format, args...)}
}

func errInvalidValue(format string, args ...any) *scimError {
	return errBadRequest(scimTypeInvalidValue, format, args...)
}

func errInvalidSyntax(format string, args ...any) *scimError {
	return errBadRequest(scimTypeInvalidSyntax, format, args...)
}

func errInvalidFilter(format string, args ...any) *scimError {
	return errBadRequest(scimTypeInvalidFilter, format, args...)
}

func errInvalidPath(format string, args ...any) *scimError {
	return errBadRequest(scimTypeInvalidPath, format, args...)
}

func errNotFound(format string, args ...any) *scimError {
	return &scimError{status: http.StatusNotFound, detail: fmt.Sprintf(format, args...)}
}

// errorBody is the JSON of an RFC 7644 §3.12 error; status is a string there.
type errorBody struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

// writeSCIMError writes e as the response.
func writeSCIMError(w http.ResponseWriter, e *scimError) {
	h := w.Header()
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	if e.allow != "" {
		h.Set("Allow", e.allow)
	}
	if e.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="SCIM"`)
	}
	writeJSON(w, e.status, errorBody{
		Schemas:  []string{schemaError},
		Status:   strconv.Itoa(e.status),
		ScimType: e.scimType,
		Detail:   e.detail,
	})
}

// classify turns any error met while serving a request into the SCIM error
// the client gets. serverFault is true for faults of the server itself (a
// 500), which the caller logs.
func classify(err error) (e *scimError, serverFault bool) {
	var se *scimError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &se):
		return se, se.status >= 500 && se.status != http.StatusServiceUnavailable && se.status != http.StatusNotImplemented
	case errors.As(err, &tooBig):
		return &scimError{status: http.StatusRequestEntityTooLarge,
			detail: fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit)}, false
	case errors.Is(err, storage.ErrNotFound):
		return errNotFound("resource not found"), false
	case errors.Is(err, storage.ErrUniqueness):
		return &scimError{status: http.StatusConflict, scimType: scimTypeUniqueness,
			detail: "userName is already taken by another user"}, false
	case errors.Is(err, storage.ErrTooBig):
		// The change needs more writes than the store takes in one
		// transaction. Nothing was written. (Deleting a group never
		// gets here: the store sweeps its memberships in batches.)
		// RFC 7644 names no scimType for 413; the detail says how to get
		// the change through.
		return &scimError{status: http.StatusRequestEntityTooLarge,
			detail: "the change is too large for the store to apply in one transaction and nothing was changed; " +
				"send it as smaller requests"}, false
	case errors.Is(err, storage.ErrConflict):
		// The store gave up after repeated conflicts with concurrent
		// writers; the request did nothing and can simply be sent again.
		return &scimError{status: http.StatusServiceUnavailable, retryAfter: 1,
			detail: "too many concurrent changes to the same resource; retry"}, false
	case errors.Is(err, storage.ErrUnavailable):
		// The shared database could not be reached. Nothing was written
		// half: the transaction committed whole or not at all, so the
		// IdP's retry is safe (a create that did commit answers 409).
		return &scimError{status: http.StatusServiceUnavailable, retryAfter: retryAfterUnavailable,
			detail: "the directory store is unavailable; retry later"}, false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &scimError{status: http.StatusServiceUnavailable, retryAfter: 1,
			detail: "request cancelled before it completed"}, false
	default:
		return &scimError{status: http.StatusInternalServerError, detail: "internal error"}, true
	}
}

// retryAfterUnavailable is the Retry-After, in seconds, of the 503 sent
// while the store is unavailable: long enough not to hammer a database
// that is restarting, short enough for a failover.
const retryAfterUnavailable = 5

func isMaxBytesError(err error) bool {
	var tooBig *http.MaxBytesError
	return errors.As(err, &tooBig)
}
