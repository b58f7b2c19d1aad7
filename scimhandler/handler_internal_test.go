package scimhandler

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

func TestSplitSCIMPath(t *testing.T) {
	tests := []struct {
		path, prefix, endpoint, rest string
		ok                           bool
	}{
		{"/scim/v2/acme/Users", "/scim/v2/acme", "Users", "", true},
		{"/scim/v2/acme/Users/", "/scim/v2/acme", "Users", "", true},
		{"/scim/v2/acme/Users/42", "/scim/v2/acme", "Users", "42", true},
		{"/scim/v2/acme/users/42", "/scim/v2/acme", "Users", "42", true},
		{"/scim/v2/acme/Users/.search", "/scim/v2/acme", "Users", ".search", true},
		{"/scim/v2/acme/.search", "/scim/v2/acme", ".search", "", true},
		{"/scim/v2/acme/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", "/scim/v2/acme", "Schemas", "urn:ietf:params:scim:schemas:core:2.0:User", true},
		{"/scim/v2/acme/ServiceProviderConfig", "/scim/v2/acme", "ServiceProviderConfig", "", true},
		{"/Users/42", "", "Users", "42", true},
		// A tenant named like an endpoint.
		{"/scim/v2/Users/Users/42", "/scim/v2/Users", "Users", "42", true},
		{"/scim/v2/Groups/Groups", "/scim/v2", "Groups", "Groups", true},
		{"/scim/v2/acme/", "", "", "", false},
		{"/scim/v2/acme/Devices/1", "", "", "", false},
	}
	for _, tt := range tests {
		prefix, endpoint, rest, ok := splitSCIMPath(tt.path)
		if ok != tt.ok || prefix != tt.prefix || endpoint != tt.endpoint || strings.Join(rest, "/") != tt.rest {
			t.Errorf("%s: got %q %q %q %v, want %q %q %q %v", tt.path, prefix, endpoint, rest, ok, tt.prefix, tt.endpoint, tt.rest, tt.ok)
		}
	}
}

func TestETagMatching(t *testing.T) {
	for header, want := range map[string]bool{
		`W/"3"`:           true,
		`"3"`:             true,
		`*`:               true,
		`W/"2", W/"3"`:    true,
		`W/"30"`:          false,
		`W/3`:             false,
		`"W/\"3\""`:       false,
		`W/"4" , "5"`:     false,
		` W/"3" `:         true,
		`W/"3"garbage`:    false,
		`W/"2",garbage,*`: true,
	} {
		if got := etagListMatches(header, 3); got != want {
			t.Errorf("%q: %v, want %v", header, got, want)
		}
	}
}

func TestBearerToken(t *testing.T) {
	for header, want := range map[string]string{
		"Bearer abc":     "abc",
		"bearer abc":     "abc",
		"BEARER   abc  ": "abc",
		"Bearer":         "",
		"Bearer ":        "",
		"Basic abc":      "",
		"abc":            "",
		"":               "",
	} {
		got, ok := bearerToken(header)
		if got != want || ok != (want != "") {
			t.Errorf("%q: %q %v, want %q", header, got, ok, want)
		}
	}
}

// TestStoreErrorsMapToSCIMErrors: the store's typed errors become client
// errors with a SCIM status, never a 500.
func TestStoreErrorsMapToSCIMErrors(t *testing.T) {
	tests := []struct {
		err    error
		status int
	}{
		{storage.ErrNotFound, http.StatusNotFound},
		{storage.ErrUniqueness, http.StatusConflict},
		{fmt.Errorf("wrapped: %w", storage.ErrTooBig), http.StatusRequestEntityTooLarge},
		{storage.ErrConflict, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		e, fault := classify(tt.err)
		if e.status != tt.status || fault {
			t.Errorf("classify(%v) = %d (server fault %v), want %d", tt.err, e.status, fault, tt.status)
		}
	}
}
