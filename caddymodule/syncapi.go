package caddymodule

import (
	"net/http"

	"github.com/portcullis/portcullis/directory"
)

// serveSync answers the tenant's Google Workspace sync routes:
//
//	POST /portcullis/tenants/{tenant}/sync  start a full sync ("sync now"):
//	     202 with the status; during a sync, the running one's status
//	GET  /portcullis/tenants/{tenant}/sync  the status: last start, end,
//	     duration, result, counts, last error, next run, activity poll
//
// A tenant without a google block has no sync: 404. Sync now runs on the
// replica asked even when another holds the pull lease and runs the
// schedule (directory/lease.go says why that is safe); the status is this
// replica's, with leaseHeld saying whether it runs the schedule.
func serveSync(w http.ResponseWriter, r *http.Request, app *App, tenant string) error {
	s := app.googleSyncer(tenant)
	if s == nil {
		return apiError(http.StatusNotFound, "tenant %s is not pulled from Google Workspace (no google block in its configuration): it has no sync", tenant)
	}
	switch r.Method {
	case http.MethodPost:
		return writeJSON(w, http.StatusAccepted, s.Trigger())
	case http.MethodGet:
		return writeJSON(w, http.StatusOK, s.Status())
	}
	return methodNotAllowed(w, http.MethodGet, http.MethodPost)
}

// googleSyncer is the tenant's syncer, or nil when it has no google block.
func (a *App) googleSyncer(tenant string) *directory.Syncer {
	if rt, ok := a.runtimes[tenant]; ok {
		return rt.syncer
	}
	return nil
}
