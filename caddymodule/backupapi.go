package caddymodule

import (
	"io"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(BackupAPI{})
}

// BackupAPI adds the online backup route to Caddy's admin API:
//
//	GET /portcullis/backup  a consistent copy of the whole store (every
//	                        tenant), streamed while the gateway serves
//
// It is a module of its own (Caddy loads every admin.api module) so the
// backup route stays apart from the tenant routes of AdminAPI. The body
// is the backend's backup format; the trailer Portcullis-Backup-Status
// says "complete" only if the whole store was written, so a client can
// tell a finished backup from one cut off by an error.
type BackupAPI struct{}

// backupStatusTrailer is the trailer that tells a complete backup.
const (
	backupStatusTrailer = "Portcullis-Backup-Status"
	backupComplete      = "complete"
)

// backupStore is a store that can take an online backup
// (badgerstore.Store does).
type backupStore interface {
	Backup(w io.Writer) error
}

// CaddyModule returns the Caddy module information.
func (BackupAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.portcullis_backup",
		New: func() caddy.Module { return new(BackupAPI) },
	}
}

// backupPath is the route; it is more specific than AdminAPI's
// "/portcullis/", so the admin mux sends it here.
const backupPath = "/portcullis/backup"

// Routes implements caddy.AdminRouter.
func (BackupAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{
		Pattern: backupPath,
		Handler: caddy.AdminHandlerFunc(serveBackup),
	}}
}

func serveBackup(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return methodNotAllowed(w, http.MethodGet)
	}
	app := runningApp()
	if app == nil {
		return apiError(http.StatusServiceUnavailable, "the portcullis app is not running (no portcullis global option in the config)")
	}
	store, ok := app.Store().(backupStore)
	if !ok {
		return apiError(http.StatusNotImplemented, "the storage backend %T cannot take online backups; use its own tools", app.Store())
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Trailer", backupStatusTrailer)
	w.WriteHeader(http.StatusOK)
	status := backupComplete
	if err := store.Backup(w); err != nil {
		// The status line is sent: the trailer is the only way left to
		// say it failed. One line, as a header value must be.
		status = "failed: " + strings.Join(strings.Fields(err.Error()), " ")
		app.logger.Error("online backup failed", zap.Error(err))
	} else {
		app.logger.Info("online backup taken", zap.String("remote", r.RemoteAddr))
	}
	w.Header().Set(backupStatusTrailer, status)
	return nil
}

// Interface guards
var (
	_ caddy.AdminRouter = BackupAPI{}
)
