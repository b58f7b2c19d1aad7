package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/portcullis/portcullis/operator"
	"github.com/portcullis/portcullis/storage"
)

// TestAdminStoreErrors: the admin API answers a store it cannot reach
// with 503 and Retry-After, as SCIM and sign-in do, not 500 (the outage
// itself is exercised in TestDatabaseOutage).
func TestAdminStoreErrors(t *testing.T) {
	unavailable := fmt.Errorf("postgres: begin: %w: %w", storage.ErrUnavailable, errors.New("dial tcp 127.0.0.1:5432: connection refused"))
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantRetry  string
	}{
		{"store unavailable", storeError("listing events", unavailable), http.StatusServiceUnavailable, "5"},
		{"operator, store unavailable", operatorError("listing users", fmt.Errorf("operator: %w", unavailable)), http.StatusServiceUnavailable, "5"},
		{"write conflict", storeError("issuing SCIM token", storage.ErrConflict), http.StatusServiceUnavailable, "1"},
		{"other store failure", storeError("listing events", errors.New("disk on fire")), http.StatusInternalServerError, ""},
		{"not found", operatorError("reading the user", operator.ErrNotFound), http.StatusNotFound, ""},
		{"503 without the store", apiError(http.StatusServiceUnavailable, "the portcullis app is not running"), http.StatusServiceUnavailable, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			err := withRetryAfter(w, tc.err)
			var apiErr caddy.APIError
			if !errors.As(err, &apiErr) || apiErr.HTTPStatus != tc.wantStatus {
				t.Fatalf("error %#v: want status %d", err, tc.wantStatus)
			}
			if got := w.Header().Get("Retry-After"); got != tc.wantRetry {
				t.Fatalf("Retry-After %q, want %q", got, tc.wantRetry)
			}
		})
	}
}
