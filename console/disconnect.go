package console

import (
	"net/http"
)

// confirmView is a confirmation page: what will happen, what stays.
type confirmView struct {
	Intro        string
	Consequences []string
	Keeps        []string
	Action       string // the form's POST target
	Button       string
	Cancel       string
}

// confirmDisconnect names the consequences of disconnecting the IdP.
func (h *Handler) confirmDisconnect(w http.ResponseWriter, r *http.Request, c *call) {
	h.render(w, r, http.StatusOK, "confirm", view{Title: "Disconnect the identity provider?", Section: "overview", Tenant: c.tenant, Data: confirmView{
		Intro: "The gateway stops taking users and groups from your IdP, and everyone it managed becomes a manually managed user here.",
		Consequences: []string{
			"SCIM is turned off and the token deleted: every push from the IdP gets 401. Any directory pull stops.",
			"Every IdP-managed user becomes a manual user, with the role they have right now pinned: later group changes no longer move it.",
			"New hires in the IdP are no longer created here, and leavers are no longer deactivated here: you deactivate them in this console.",
			"Connecting the IdP again (a new token) adopts these users back when it pushes them: no duplicates, and every change is audited.",
		},
		Keeps:  []string{"Nobody is signed out, and people keep signing in through the IdP as before.", "Groups, mappings and the audit trail stay."},
		Action: h.tenantURL(c.tenant, "/disconnect"),
		Button: "Disconnect the IdP",
		Cancel: h.tenantURL(c.tenant, "/"),
	}})
}

func (h *Handler) disconnect(w http.ResponseWriter, r *http.Request, c *call) {
	if _, err := c.op.Disconnect(r.Context(), c.actor); err != nil {
		h.opFail(w, r, c, "disconnecting the IdP", err)
		return
	}
	redirectDone(w, r, h.tenantURL(c.tenant, "/"), "disconnect")
}
