package scimhandler

import (
	"net/http"
	"time"
)

// Observer is told what the handler did, so that an embedder can count it
// (the Caddy wiring turns it into Prometheus metrics). The handler stays
// free of any metrics library: it only calls these methods, on the
// request's goroutine and after the fact, so they must be quick and must
// not block. Config.Observer nil: nothing is reported.
//
// Nothing passed names a person except UserDeprovisioned's user id, which
// is there to match the end of the user's sessions elsewhere in the
// process; it must never become a metric label.
type Observer interface {
	// Request reports one answered SCIM request: resource is one of the
	// Resource* names, operation one of the Op* names, status the HTTP
	// status of the answer (401 and 429 included).
	Request(resource, operation string, status int)
	// TokenRejected reports a request whose bearer token was refused:
	// reason is one of the Rejected* names; limited says it was answered
	// 429 because its client address is over the failure limit.
	TokenRejected(reason string, limited bool)
	// UserDeprovisioned reports a write that deactivated an active user, or
	// deleted one, and ended the user's stored sessions; committed is when
	// its transaction committed (the store had it on disk).
	UserDeprovisioned(userID string, committed time.Time)
}

// Resource names of Observer.Request: the SCIM endpoint a request is for.
const (
	ResourceUsers                 = "Users"
	ResourceGroups                = "Groups"
	ResourceServiceProviderConfig = "ServiceProviderConfig"
	ResourceSchemas               = "Schemas"
	ResourceResourceTypes         = "ResourceTypes"
	ResourceBulk                  = "Bulk"
	ResourceMe                    = "Me"
	// ResourceRoot is a search across resource types (POST /.search).
	ResourceRoot = "root"
	// ResourceUnknown is a path that names no SCIM endpoint.
	ResourceUnknown = "unknown"
)

// Operation names of Observer.Request.
const (
	OpList    = "list"   // GET of a collection (Users, Schemas, ...)
	OpSearch  = "search" // POST .search
	OpCreate  = "create" // POST
	OpGet     = "get"    // GET of one resource
	OpReplace = "replace"
	OpPatch   = "patch"
	OpDelete  = "delete"
	OpOther   = "other" // any other method
)

// Reasons of Observer.TokenRejected.
const (
	RejectedMissing  = "missing"  // no usable Authorization: Bearer header
	RejectedInvalid  = "invalid"  // a token that is not the tenant's
	RejectedDisabled = "disabled" // the tenant has no token: SCIM is off
)

// requestKind names the resource and operation of r for Observer.Request,
// from its path and method alone (authenticated or not).
func requestKind(r *http.Request) (resource, op string) {
	_, endpoint, rest, ok := splitSCIMPath(r.URL.Path)
	if !ok {
		return ResourceUnknown, opOf(r.Method, false)
	}
	resource = endpoint
	if endpoint == ".search" {
		return ResourceRoot, OpSearch
	}
	if len(rest) == 1 && rest[0] == ".search" {
		return resource, OpSearch
	}
	return resource, opOf(r.Method, len(rest) > 0)
}

// opOf maps a method to an operation, on one resource or a collection.
func opOf(method string, one bool) string {
	switch method {
	case http.MethodGet, http.MethodHead:
		if one {
			return OpGet
		}
		return OpList
	case http.MethodPost:
		return OpCreate
	case http.MethodPut:
		return OpReplace
	case http.MethodPatch:
		return OpPatch
	case http.MethodDelete:
		return OpDelete
	}
	return OpOther
}

// observeRequest reports an answered request; status 0 (nothing written)
// is what net/http sends then, 200.
func (h *Handler) observeRequest(r *http.Request, status int) {
	if h.observer == nil {
		return
	}
	if status == 0 {
		status = http.StatusOK
	}
	resource, op := requestKind(r)
	h.observer.Request(resource, op, status)
}

// observeDeprovisioned reports a committed deactivation or deletion.
func (h *Handler) observeDeprovisioned(req *request, userID string) {
	if h.observer != nil {
		h.observer.UserDeprovisioned(userID, req.committed)
	}
}
