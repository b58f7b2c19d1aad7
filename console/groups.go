package console

import (
	"net/http"
	"strings"

	"github.com/portcullis/portcullis/operator"
)

// groupRow is one group with its dropdown.
type groupRow struct {
	G      operator.Group
	Pinned bool // mapped in the config: read-only
	Stored bool // a stored mapping sets its level
}

// orphanMapping is a mapping that names no group the tenant knows yet.
type orphanMapping struct {
	M      operator.Mapping
	Config bool
}

type groupsView struct {
	Roles   []string
	Default string
	Groups  []groupRow
	Orphans []orphanMapping
}

// serveGroups lists every group with a dropdown of levels.
func (h *Handler) serveGroups(w http.ResponseWriter, r *http.Request, c *call) {
	groups, err := c.op.ListGroups(r.Context())
	if err != nil {
		h.opFail(w, r, c, "listing groups", err)
		return
	}
	m, err := c.op.Mappings(r.Context())
	if err != nil {
		h.opFail(w, r, c, "reading the mappings", err)
		return
	}
	v := groupsView{Roles: m.Roles, Default: m.Default}
	named := map[string]bool{}
	for _, g := range groups {
		v.Groups = append(v.Groups, groupRow{G: g, Pinned: g.LevelFrom == "config", Stored: g.LevelFrom == "stored"})
		for _, ref := range groupRefs(g) {
			named[ref] = true
		}
	}
	for _, cm := range m.Config {
		if !named[cm.Group] {
			v.Orphans = append(v.Orphans, orphanMapping{M: cm, Config: true})
		}
	}
	for _, sm := range m.Stored {
		if !named[sm.Group] {
			v.Orphans = append(v.Orphans, orphanMapping{M: sm})
		}
	}
	h.render(w, r, http.StatusOK, "groups", view{Title: "Groups & mappings", Section: "groups", Tenant: c.tenant, Data: v})
}

// groupRefs are the names a mapping may use for g (as map_group does).
func groupRefs(g operator.Group) []string {
	refs := []string{g.ID}
	if g.ExternalID != "" {
		refs = append(refs, g.ExternalID)
	}
	if g.DisplayName != "" {
		refs = append(refs, g.DisplayName)
	}
	return refs
}

// setMapping sets the level of a group (role=<level>) or goes back to
// the default (role=""): the stored mappings that name the group by any
// of its names are removed.
func (h *Handler) setMapping(w http.ResponseWriter, r *http.Request, c *call) {
	group := strings.TrimSpace(r.PostForm.Get("group"))
	role := r.PostForm.Get("role")
	back := h.tenantURL(c.tenant, "/groups")
	if group == "" {
		h.fail(w, r, c.tenant, http.StatusBadRequest, "No group was named.")
		return
	}
	if role != "" {
		if err := c.op.SetMapping(r.Context(), c.actor, group, role); err != nil {
			h.opFail(w, r, c, "saving the mapping", err)
			return
		}
		redirectDone(w, r, back, "mapping")
		return
	}
	refs := []string{group}
	if groups, err := c.op.ListGroups(r.Context()); err == nil {
		for _, g := range groups {
			if g.ID == group {
				refs = groupRefs(g)
			}
		}
	}
	m, err := c.op.Mappings(r.Context())
	if err != nil {
		h.opFail(w, r, c, "reading the mappings", err)
		return
	}
	for _, sm := range m.Stored {
		for _, ref := range refs {
			if sm.Group == ref {
				if err := c.op.DeleteMapping(r.Context(), c.actor, sm.Group); err != nil {
					h.opFail(w, r, c, "removing the mapping", err)
					return
				}
			}
		}
	}
	redirectDone(w, r, back, "unmapped")
}

// declareGroup adds a claim group ahead of its first sign-in.
func (h *Handler) declareGroup(w http.ResponseWriter, r *http.Request, c *call) {
	claim := strings.TrimSpace(r.PostForm.Get("claim"))
	if claim == "" || len(claim) > 256 {
		h.fail(w, r, c.tenant, http.StatusBadRequest, "Give the group's claim value (up to 256 characters), as the IdP sends it.")
		return
	}
	if _, err := c.op.DeclareGroup(r.Context(), c.actor, claim); err != nil {
		h.opFail(w, r, c, "declaring the group", err)
		return
	}
	redirectDone(w, r, h.tenantURL(c.tenant, "/groups"), "declared")
}
