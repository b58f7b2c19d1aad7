package console

import (
	"errors"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/operator"
	"github.com/portcullis/portcullis/storage"
)

// retryAfterUnavailable is the Retry-After, in seconds, of the 503 the
// console answers while the store is unavailable (the shared database
// cannot be reached), as SCIM and sign-in do.
const retryAfterUnavailable = 5

// unavailable answers 503 with Retry-After: nothing was half-done, and the
// same action works once the store is back.
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, t *Tenant) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterUnavailable))
	h.fail(w, r, t, http.StatusServiceUnavailable, "The gateway's store is not available right now. Nothing was half-done; try again in a moment.")
}

// opFail shows what an operation refused, with the status the admin API
// would answer; an unavailable store is a 503 with Retry-After; an
// unexpected failure is logged and shown as a 500 without its details.
func (h *Handler) opFail(w http.ResponseWriter, r *http.Request, c *call, doing string, err error) {
	var managed *operator.ManagedError
	switch {
	case errors.As(err, &managed):
		h.fail(w, r, c.tenant, http.StatusConflict, managed.Message)
	case errors.Is(err, operator.ErrPinnedByConfig):
		h.fail(w, r, c.tenant, http.StatusConflict, "This group is mapped in the config (map_group), which wins over the console. Change the mapping in the Caddyfile.")
	case errors.Is(err, operator.ErrNotFound):
		h.fail(w, r, c.tenant, http.StatusNotFound, "It no longer exists (it may have been removed by your IdP or another operator).")
	case errors.Is(err, operator.ErrNoToken):
		h.fail(w, r, c.tenant, http.StatusNotFound, "This tenant has never had a SCIM token.")
	case errors.Is(err, operator.ErrInvalid), errors.Is(err, operator.ErrConflict):
		status := http.StatusBadRequest
		if errors.Is(err, operator.ErrConflict) {
			status = http.StatusConflict
		}
		h.fail(w, r, c.tenant, status, err.Error())
	case errors.Is(err, storage.ErrUnavailable):
		h.logger.Warn("console: "+doing+": the store is unavailable", zap.String("tenant", c.tenant.Name), zap.String("actor", c.actor), zap.Error(err))
		h.unavailable(w, r, c.tenant)
	default:
		h.logger.Error("console: "+doing, zap.String("tenant", c.tenant.Name), zap.String("actor", c.actor), zap.Error(err))
		h.fail(w, r, c.tenant, http.StatusInternalServerError, "The gateway could not finish "+doing+". Nothing was half-done; try again, and see the gateway's log if it keeps failing.")
	}
}
