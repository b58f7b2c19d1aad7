package console

import (
	"net/http"

	"github.com/portcullis/portcullis/operator"
)

// tenantCard is one tenant on the home page.
type tenantCard struct {
	Name string
	O    *operator.Overview
	Err  string
}

// serveHome shows every tenant at a glance.
func (h *Handler) serveHome(w http.ResponseWriter, r *http.Request) {
	cards := make([]tenantCard, 0, len(h.order))
	for _, name := range h.order {
		card := tenantCard{Name: name}
		op, err := h.tenants[name].Operator(r.Context())
		if err == nil {
			card.O, err = op.Overview(r.Context())
		}
		if err != nil {
			card.Err = "Not available right now."
		}
		cards = append(cards, card)
	}
	h.render(w, r, http.StatusOK, "home", view{Title: "Tenants", Data: cards})
}

type tenantView struct {
	O    *operator.Overview
	Pull *PullStatus // nil: the tenant is not pulled from a directory
}

// serveTenant shows one tenant: IdP connection, token health, counts.
func (h *Handler) serveTenant(w http.ResponseWriter, r *http.Request, c *call) {
	o, err := c.op.Overview(r.Context())
	if err != nil {
		h.opFail(w, r, c, "reading the tenant's overview", err)
		return
	}
	tv := tenantView{O: o}
	if c.tenant.Pull != nil {
		st := c.tenant.Pull.Status()
		tv.Pull = &st
	}
	h.render(w, r, http.StatusOK, "tenant", view{Title: "Overview", Section: "overview", Tenant: c.tenant, Data: tv})
}

// syncNow starts the tenant's directory pull (or joins the running one)
// and comes back to the overview, which shows it running.
func (h *Handler) syncNow(w http.ResponseWriter, r *http.Request, c *call) {
	if c.tenant.Pull == nil {
		h.fail(w, r, c.tenant, http.StatusNotFound, "This tenant is not pulled from a directory: there is nothing to sync.")
		return
	}
	c.tenant.Pull.SyncNow()
	redirectDone(w, r, h.tenantURL(c.tenant, "/"), "syncstarted")
}
