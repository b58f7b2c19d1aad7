package console

import (
	"net/http"
	"net/url"

	"github.com/portcullis/portcullis/operator"
)

// usersPage is the size of a page of users.
const usersPage = 50

// maxSearchLen bounds the search text (a longer one matches nobody).
const maxSearchLen = 256

type option struct{ Value, Label string }

var sourceOptions = []option{
	{"", "Anyone"}, {"scim", "SCIM"}, {"google", "Google"}, {"jit", "IdP sign-in"}, {"manual", "Manual"},
}

type usersView struct {
	Query, Source string
	Sources       []option
	Users         []operator.User
	First, Next   string
	Roles         []string // for the new user form
}

// serveUsers lists users: a search, a source filter and cursor paging.
func (h *Handler) serveUsers(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	v := usersView{Query: q.Get("q"), Source: q.Get("source"), Sources: sourceOptions}
	if len(v.Query) > maxSearchLen {
		h.fail(w, r, c.tenant, http.StatusBadRequest, "The search text is too long.")
		return
	}
	known := false
	for _, o := range sourceOptions {
		known = known || o.Value == v.Source
	}
	if !known {
		h.fail(w, r, c.tenant, http.StatusBadRequest, "Unknown source: pick one from the list.")
		return
	}
	cursor := q.Get("cursor")
	users, next, err := c.op.ListUsers(r.Context(), operator.UserQuery{Filter: v.Query, Source: v.Source, Cursor: cursor, Limit: usersPage})
	if err != nil {
		h.opFail(w, r, c, "listing users", err)
		return
	}
	v.Users = users
	m, err := c.op.Mappings(r.Context())
	if err != nil {
		h.opFail(w, r, c, "reading the roles", err)
		return
	}
	v.Roles = m.Roles
	base := url.Values{}
	if v.Query != "" {
		base.Set("q", v.Query)
	}
	if v.Source != "" {
		base.Set("source", v.Source)
	}
	page := func(cur string) string {
		p := url.Values{}
		for k, vs := range base {
			p[k] = vs
		}
		if cur != "" {
			p.Set("cursor", cur)
		}
		u := h.tenantURL(c.tenant, "/users")
		if len(p) > 0 {
			u += "?" + p.Encode()
		}
		return u
	}
	if cursor != "" {
		v.First = page("")
	}
	if next != "" {
		v.Next = page(next)
	}
	h.render(w, r, http.StatusOK, "users", view{Title: "Users", Section: "users", Tenant: c.tenant, Data: v})
}

type userView struct {
	U        *operator.UserDetail
	Sessions []operator.Session
	Roles    []string // for a manual user's role
}

// serveUser shows one user: profile, role and why, sessions.
func (h *Handler) serveUser(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	u, err := c.op.User(r.Context(), id)
	if err != nil {
		h.opFail(w, r, c, "reading the user", err)
		return
	}
	sessions, err := c.op.Sessions(r.Context(), id)
	if err != nil {
		h.opFail(w, r, c, "listing the user's sessions", err)
		return
	}
	var roles []string
	if u.Source == "manual" {
		m, err := c.op.Mappings(r.Context())
		if err != nil {
			h.opFail(w, r, c, "reading the roles", err)
			return
		}
		roles = m.Roles
	}
	title := u.UserName
	if u.DisplayName != "" {
		title = u.DisplayName
	}
	h.render(w, r, http.StatusOK, "user", view{Title: title, Section: "users", Tenant: c.tenant, Data: userView{U: u, Sessions: sessions, Roles: roles}})
}

// endSessions ends one session of the user (session=<handle>) or all of
// them (all=1).
func (h *Handler) endSessions(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	back := h.tenantURL(c.tenant, "/users/"+url.PathEscape(id))
	if r.PostForm.Get("all") == "1" {
		if _, err := c.op.EndUserSessions(r.Context(), c.actor, id); err != nil {
			h.opFail(w, r, c, "ending the user's sessions", err)
			return
		}
		redirectDone(w, r, back, "sessions")
		return
	}
	sid := r.PostForm.Get("session")
	if sid == "" {
		h.fail(w, r, c.tenant, http.StatusBadRequest, "No session was named.")
		return
	}
	if err := c.op.EndSession(r.Context(), c.actor, id, sid); err != nil {
		h.opFail(w, r, c, "ending the session", err)
		return
	}
	redirectDone(w, r, back, "session")
}

// updateUser changes a manual user's role (role=<level>) or status
// (active=true|false); an IdP-managed user is refused with the reason.
func (h *Handler) updateUser(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	var change operator.UserChange
	if role := r.PostForm.Get("role"); role != "" {
		change.Role = &role
	}
	switch r.PostForm.Get("active") {
	case "true":
		change.Active = &[]bool{true}[0]
	case "false":
		change.Active = &[]bool{false}[0]
	}
	if change.Role == nil && change.Active == nil {
		h.fail(w, r, c.tenant, http.StatusBadRequest, "Nothing to change.")
		return
	}
	if _, err := c.op.UpdateUser(r.Context(), c.actor, id, change); err != nil {
		h.opFail(w, r, c, "changing the user", err)
		return
	}
	redirectDone(w, r, h.tenantURL(c.tenant, "/users/"+url.PathEscape(id)), "user")
}
