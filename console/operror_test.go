package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portcullis/portcullis/operator"
	"github.com/portcullis/portcullis/storage"
)

// TestOpFailStatus: the console answers a store it cannot reach with 503
// and Retry-After (as SCIM and sign-in do), never a 500.
func TestOpFailStatus(t *testing.T) {
	f := newFixture(t)
	tenant := f.h.tenants["acme"]
	unavailable := fmt.Errorf("operator: %w", fmt.Errorf("postgres: %w: %w", storage.ErrUnavailable, errors.New("connection refused")))
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantRetry  bool
	}{
		{"store unavailable", unavailable, http.StatusServiceUnavailable, true},
		{"not found", operator.ErrNotFound, http.StatusNotFound, false},
		{"unexpected", errors.New("disk on fire"), http.StatusInternalServerError, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodGet, "http://gw.test/portcullis/acme/users", nil)
			f.h.opFail(w, r, &call{tenant: tenant, actor: "op"}, "listing users", tc.err)
			if w.Code != tc.wantStatus || (w.Header().Get("Retry-After") != "") != tc.wantRetry {
				t.Fatalf("status %d, Retry-After %q; want %d, Retry-After set: %v", w.Code, w.Header().Get("Retry-After"), tc.wantStatus, tc.wantRetry)
			}
		})
	}
}
