package console

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/operator"
	"github.com/portcullis/portcullis/scimhandler"
)

type tokenView struct {
	T *operator.TokenStatus // nil: never made
}

// serveToken shows the SCIM token's health (never the token).
func (h *Handler) serveToken(w http.ResponseWriter, r *http.Request, c *call) {
	t, err := c.op.TokenStatus(r.Context())
	if err != nil && !errors.Is(err, operator.ErrNoToken) {
		h.opFail(w, r, c, "reading the token's status", err)
		return
	}
	h.render(w, r, http.StatusOK, "token", view{Title: "SCIM token", Section: "token", Tenant: c.tenant, Data: tokenView{T: t}})
}

// generateToken makes the first token (or the one after SCIM was
// disabled); an active token is rotated only through the confirmation.
func (h *Handler) generateToken(w http.ResponseWriter, r *http.Request, c *call) {
	t, err := c.op.TokenStatus(r.Context())
	if err == nil && t.Status == "active" {
		h.fail(w, r, c.tenant, http.StatusConflict, "This tenant already has an active token. Rotate it from the SCIM token page, after reading what that breaks.")
		return
	}
	if err != nil && !errors.Is(err, operator.ErrNoToken) {
		h.opFail(w, r, c, "reading the token's status", err)
		return
	}
	h.issue(w, r, c, "Your new SCIM token")
}

// issue makes a token and shows it, once. The answer to the POST is the
// page itself (not a redirect), so the token is in no URL and no history
// entry, and Cache-Control: no-store keeps it out of caches.
func (h *Handler) issue(w http.ResponseWriter, r *http.Request, c *call, title string) {
	token, err := scimhandler.IssueToken(r.Context(), c.tenant.Store, c.tenant.Name, c.actor)
	if err != nil {
		h.opFail(w, r, c, "making the token", err)
		return
	}
	h.logger.Info("console: SCIM token issued", zap.String("tenant", c.tenant.Name), zap.String("actor", c.actor))
	h.render(w, r, http.StatusOK, "token_shown", view{Title: title, Section: "token", Tenant: c.tenant, Data: token, Script: copyScript})
}

// confirmRotate says what rotating breaks.
func (h *Handler) confirmRotate(w http.ResponseWriter, r *http.Request, c *call) {
	h.render(w, r, http.StatusOK, "confirm", view{Title: "Rotate the SCIM token?", Section: "token", Tenant: c.tenant, Data: confirmView{
		Intro: "A new token replaces the current one.",
		Consequences: []string{
			"The current token stops working at once: your IdP's provisioning fails with 401 until you paste the new token into it.",
			"Changes made in the IdP meanwhile are not lost: the IdP retries or pushes them on its next cycle once it has the new token.",
			"The new token is shown once, on the next page.",
		},
		Keeps:  []string{"Users, groups, mappings and sessions stay as they are. Nobody is signed out."},
		Action: h.tenantURL(c.tenant, "/token/rotate"),
		Button: "Rotate the token",
		Cancel: h.tenantURL(c.tenant, "/token"),
	}})
}

func (h *Handler) rotateToken(w http.ResponseWriter, r *http.Request, c *call) {
	h.issue(w, r, c, "Your rotated SCIM token")
}

// confirmDisable says what disabling SCIM breaks.
func (h *Handler) confirmDisable(w http.ResponseWriter, r *http.Request, c *call) {
	h.render(w, r, http.StatusOK, "confirm", view{Title: "Disable SCIM provisioning?", Section: "token", Tenant: c.tenant, Data: confirmView{
		Intro: "The token is deleted and SCIM is turned off for this tenant.",
		Consequences: []string{
			"Every push from your IdP gets 401: new hires are not created, and leavers are not deactivated here until SCIM is on again.",
			"The IdP will report provisioning errors until you generate a new token and paste it in.",
		},
		Keeps:  []string{"Users and groups stay as they are and stay managed by the IdP (locked here). To manage them by hand, disconnect the IdP instead."},
		Action: h.tenantURL(c.tenant, "/token/disable"),
		Button: "Disable SCIM",
		Cancel: h.tenantURL(c.tenant, "/token"),
	}})
}

func (h *Handler) disableToken(w http.ResponseWriter, r *http.Request, c *call) {
	if err := scimhandler.DisableToken(r.Context(), c.tenant.Store, c.tenant.Name, c.actor); err != nil {
		h.opFail(w, r, c, "disabling SCIM", err)
		return
	}
	redirectDone(w, r, h.tenantURL(c.tenant, "/token"), "disabled")
}
