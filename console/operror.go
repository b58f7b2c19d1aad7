package console

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/operator"
)

// opFail shows what an operation refused, with the status the admin API
// would answer; an unexpected failure is logged and shown as a 500
// without its details.
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
	default:
		h.logger.Error("console: "+doing, zap.String("tenant", c.tenant.Name), zap.String("actor", c.actor), zap.Error(err))
		h.fail(w, r, c.tenant, http.StatusInternalServerError, "The gateway could not finish "+doing+". Nothing was half-done; try again, and see the gateway's log if it keeps failing.")
	}
}
