package console

import (
	"net/http"
	"net/url"

	"github.com/portcullis/portcullis/operator"
)

// createUser creates a manual user from the users page's form (userName,
// email, displayName, role) and opens their page.
func (h *Handler) createUser(w http.ResponseWriter, r *http.Request, c *call) {
	f := r.PostForm
	u, err := c.op.CreateManualUser(r.Context(), c.actor, operator.NewUser{UserName: f.Get("userName"), Email: f.Get("email"),
		DisplayName: f.Get("displayName"), Role: f.Get("role")})
	if err != nil {
		h.opFail(w, r, c, "creating the user", err)
		return
	}
	redirectDone(w, r, h.tenantURL(c.tenant, "/users/"+url.PathEscape(u.ID)), "created")
}

// confirmDeleteUser says what deleting a manual user does; an IdP-managed
// user is refused here already, with the reason.
func (h *Handler) confirmDeleteUser(w http.ResponseWriter, r *http.Request, c *call) {
	u, err := c.op.User(r.Context(), r.PathValue("id"))
	if err != nil {
		h.opFail(w, r, c, "reading the user", err)
		return
	}
	if u.Source != "manual" {
		h.fail(w, r, c.tenant, http.StatusConflict, u.UserName+" is managed by your IdP ("+u.Source+"): delete or deactivate them there.")
		return
	}
	back := h.tenantURL(c.tenant, "/users/"+url.PathEscape(u.ID))
	h.render(w, r, http.StatusOK, "confirm", view{Title: "Delete " + u.UserName + "?", Section: "users", Tenant: c.tenant, Data: confirmView{
		Intro: u.UserName + " is a manually managed user. Deleting removes them from this tenant for good.",
		Consequences: []string{
			"Their record, role and group memberships are deleted: this cannot be undone.",
			"Their sessions end: their next request needs a new sign-in.",
			"If they sign in again through the IdP, they are not matched to this record any more (a JIT tenant creates a new user with the default role).",
		},
		Keeps:  []string{"The audit trail keeps every event about them, and the deletion."},
		Action: back + "/delete",
		Button: "Delete the user",
		Cancel: back,
	}})
}

func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request, c *call) {
	if err := c.op.DeleteUser(r.Context(), c.actor, r.PathValue("id")); err != nil {
		h.opFail(w, r, c, "deleting the user", err)
		return
	}
	redirectDone(w, r, h.tenantURL(c.tenant, "/users"), "deleted")
}

// confirmEndTenantSessions names the consequence of signing everyone out.
func (h *Handler) confirmEndTenantSessions(w http.ResponseWriter, r *http.Request, c *call) {
	h.render(w, r, http.StatusOK, "confirm", view{Title: "Sign everyone out of " + c.tenant.Name + "?", Section: "overview", Tenant: c.tenant, Data: confirmView{
		Intro: "Every session of every user of this tenant ends.",
		Consequences: []string{
			"Everyone signed in, you included, is signed out on their next request and has to sign in again through the IdP.",
			"Work in progress in open pages may be lost when a request is refused.",
		},
		Keeps:  []string{"Users, roles, groups and mappings stay as they are.", "The audit trail records how many sessions ended."},
		Action: h.tenantURL(c.tenant, "/sessions/end"),
		Button: "Sign everyone out",
		Cancel: h.tenantURL(c.tenant, "/"),
	}})
}

func (h *Handler) endTenantSessions(w http.ResponseWriter, r *http.Request, c *call) {
	if _, err := c.op.EndTenantSessions(r.Context(), c.actor); err != nil {
		h.opFail(w, r, c, "ending the tenant's sessions", err)
		return
	}
	redirectDone(w, r, h.tenantURL(c.tenant, "/"), "signedout")
}
