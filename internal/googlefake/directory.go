package googlefake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// User is a Workspace user as the fake holds it.
type User struct {
	ID           string // set by AddUser when empty
	PrimaryEmail string
	GivenName    string
	FamilyName   string
	Aliases      []string
	Suspended    bool
	Archived     bool
}

// Group is a Workspace group.
type Group struct {
	ID          string // set by AddGroup when empty
	Email       string
	Name        string
	Description string
}

// Member types, as the Directory API names them.
const (
	TypeUser     = "USER"
	TypeGroup    = "GROUP"
	TypeCustomer = "CUSTOMER"
)

// Member is a direct membership: a user of the domain, a nested group, or
// an external address (a USER whose id is no user of the domain).
type Member struct {
	ID    string
	Email string
	Type  string
}

// directory is the fake's data, guarded by Server.mu.
type directory struct {
	nextID     int
	users      map[string]*User
	userOrder  []string
	groups     map[string]*Group
	groupOrder []string
	members    map[string][]Member // group id → direct members, in order
	activities []Activity          // oldest first
}

func (d *directory) init() {
	d.nextID = 100000000000000000
	d.users = map[string]*User{}
	d.groups = map[string]*Group{}
	d.members = map[string][]Member{}
}

func (d *directory) newID() string {
	d.nextID++
	return strconv.Itoa(d.nextID)
}

// AddUser adds u and returns its id.
func (s *Server) AddUser(u User) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ID == "" {
		u.ID = s.dir.newID()
	}
	s.dir.users[u.ID] = &u
	s.dir.userOrder = append(s.dir.userOrder, u.ID)
	return u.ID
}

// UpdateUser changes the user with id in place.
func (s *Server) UpdateUser(id string, change func(*User)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.dir.users[id]; u != nil {
		change(u)
	}
}

// DeleteUser removes the user and its memberships.
func (s *Server) DeleteUser(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.dir.users, id)
	s.dir.userOrder = slices.DeleteFunc(s.dir.userOrder, func(x string) bool { return x == id })
	for g, ms := range s.dir.members {
		s.dir.members[g] = slices.DeleteFunc(ms, func(m Member) bool { return m.ID == id })
	}
}

// AddGroup adds g and returns its id.
func (s *Server) AddGroup(g Group) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g.ID == "" {
		g.ID = s.dir.newID()
	}
	s.dir.groups[g.ID] = &g
	s.dir.groupOrder = append(s.dir.groupOrder, g.ID)
	return g.ID
}

// UpdateGroup changes the group with id in place.
func (s *Server) UpdateGroup(id string, change func(*Group)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.dir.groups[id]; g != nil {
		change(g)
	}
}

// DeleteGroup removes the group, its members and its membership in others.
func (s *Server) DeleteGroup(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.dir.groups, id)
	delete(s.dir.members, id)
	s.dir.groupOrder = slices.DeleteFunc(s.dir.groupOrder, func(x string) bool { return x == id })
	for g, ms := range s.dir.members {
		s.dir.members[g] = slices.DeleteFunc(ms, func(m Member) bool { return m.ID == id })
	}
}

// AddUserMember makes the user a direct member of the group.
func (s *Server) AddUserMember(groupID, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.dir.users[userID]; u != nil {
		s.dir.members[groupID] = append(s.dir.members[groupID], Member{ID: u.ID, Email: u.PrimaryEmail, Type: TypeUser})
	}
}

// AddGroupMember nests the group child in parent.
func (s *Server) AddGroupMember(parentID, childID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.dir.groups[childID]; c != nil {
		s.dir.members[parentID] = append(s.dir.members[parentID], Member{ID: c.ID, Email: c.Email, Type: TypeGroup})
	}
}

// AddExternalMember adds an address outside the domain to the group (Google
// lists it as a USER with an id that is no user of the domain).
func (s *Server) AddExternalMember(groupID, email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir.members[groupID] = append(s.dir.members[groupID], Member{ID: s.dir.newID(), Email: email, Type: TypeUser})
}

// RemoveMember removes a direct member of the group.
func (s *Server) RemoveMember(groupID, memberID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir.members[groupID] = slices.DeleteFunc(s.dir.members[groupID], func(m Member) bool { return m.ID == memberID })
}

// derived lists the direct and indirect members of the group, each once,
// nested groups included (what includeDerivedMembership=true answers).
func (d *directory) derived(groupID string) []Member {
	var out []Member
	seen := map[string]bool{groupID: true}
	var walk func(id string)
	walk = func(id string) {
		for _, m := range d.members[id] {
			if seen[m.ID] {
				continue
			}
			seen[m.ID] = true
			out = append(out, m)
			if m.Type == TypeGroup {
				walk(m.ID)
			}
		}
	}
	walk(groupID)
	return out
}

func (d *directory) findUser(key string) *User {
	if u := d.users[key]; u != nil {
		return u
	}
	for _, id := range d.userOrder {
		u := d.users[id]
		if strings.EqualFold(u.PrimaryEmail, key) || slices.ContainsFunc(u.Aliases, func(a string) bool { return strings.EqualFold(a, key) }) {
			return u
		}
	}
	return nil
}

func (d *directory) findGroup(key string) *Group {
	if g := d.groups[key]; g != nil {
		return g
	}
	for _, id := range d.groupOrder {
		if g := d.groups[id]; strings.EqualFold(g.Email, key) {
			return g
		}
	}
	return nil
}

func userJSON(u *User) map[string]any {
	doc := map[string]any{
		"kind": "admin#directory#user", "id": u.ID, "etag": fmt.Sprintf("\"%s\"", u.ID),
		"primaryEmail": u.PrimaryEmail,
		"name": map[string]string{
			"givenName": u.GivenName, "familyName": u.FamilyName,
			"fullName": strings.TrimSpace(u.GivenName + " " + u.FamilyName),
		},
		"isAdmin": false, "isDelegatedAdmin": false, "suspended": u.Suspended, "archived": u.Archived,
		"emails":     []map[string]any{{"address": u.PrimaryEmail, "primary": true}},
		"customerId": "C0fake000", "orgUnitPath": "/", "isMailboxSetup": true,
		"creationTime": "2024-01-02T03:04:05.000Z", "includeInGlobalAddressList": true,
	}
	if u.Suspended {
		doc["suspensionReason"] = "ADMIN"
	}
	if len(u.Aliases) > 0 {
		doc["aliases"] = u.Aliases
	}
	return doc
}

func groupJSON(g *Group, direct int) map[string]any {
	return map[string]any{
		"kind": "admin#directory#group", "id": g.ID, "etag": fmt.Sprintf("\"%s\"", g.ID),
		"email": g.Email, "name": g.Name, "description": g.Description,
		"directMembersCount": strconv.Itoa(direct), "adminCreated": true,
	}
}

func memberJSON(m Member) map[string]any {
	return map[string]any{
		"kind": "admin#directory#member", "id": m.ID, "email": m.Email,
		"role": "MEMBER", "type": m.Type, "status": "ACTIVE", "etag": fmt.Sprintf("\"%s\"", m.ID),
	}
}

// page cuts a listing at pageToken (an offset here; opaque to clients).
func page(r *http.Request, n, defaultSize, maxSize int) (from, to int, next string, err error) {
	size := defaultSize
	if v := r.URL.Query().Get("maxResults"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 {
			return 0, 0, "", fmt.Errorf("Invalid value for maxResults")
		}
		size = min(size, maxSize)
	}
	if v := r.URL.Query().Get("pageToken"); v != "" {
		if from, err = strconv.Atoi(strings.TrimPrefix(v, "p")); err != nil || from < 0 {
			return 0, 0, "", fmt.Errorf("Invalid page token")
		}
	}
	from = min(from, n)
	to = min(from+size, n)
	if to < n {
		next = "p" + strconv.Itoa(to)
	}
	return from, to, next, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}

// serveDirectory answers users.list/get, groups.list/get, members.list and
// members.hasMember.
func (s *Server) serveDirectory(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/admin/directory/v1/"), "/")
	if r.Method != http.MethodGet {
		apiError(w, http.StatusMethodNotAllowed, "badRequest", "read only fake", "")
		return
	}
	switch {
	case len(parts) == 1 && parts[0] == "users":
		s.count("users")
		if s.authorize(w, r, ScopeUserReadonly) {
			s.listUsers(w, r)
		}
	case len(parts) == 2 && parts[0] == "users":
		s.count("user")
		if !s.authorize(w, r, ScopeUserReadonly) {
			return
		}
		s.mu.Lock()
		u := s.dir.findUser(parts[1])
		var doc map[string]any
		if u != nil {
			doc = userJSON(u)
		}
		s.mu.Unlock()
		if doc == nil {
			apiError(w, http.StatusNotFound, "notFound", "Resource Not Found: userKey", "")
			return
		}
		writeJSON(w, doc)
	case len(parts) == 1 && parts[0] == "groups":
		s.count("groups")
		if s.authorize(w, r, ScopeGroupReadonly) {
			s.listGroups(w, r)
		}
	case len(parts) == 2 && parts[0] == "groups":
		s.count("group")
		if !s.authorize(w, r, ScopeGroupReadonly) {
			return
		}
		s.mu.Lock()
		g := s.dir.findGroup(parts[1])
		var doc map[string]any
		if g != nil {
			doc = groupJSON(g, len(s.dir.members[g.ID]))
		}
		s.mu.Unlock()
		if doc == nil {
			apiError(w, http.StatusNotFound, "notFound", "Resource Not Found: groupKey", "")
			return
		}
		writeJSON(w, doc)
	case len(parts) == 3 && parts[0] == "groups" && parts[2] == "members":
		s.count("members")
		if s.authorize(w, r, ScopeMemberReadonly, ScopeGroupReadonly) {
			s.listMembers(w, r, parts[1])
		}
	case len(parts) == 4 && parts[0] == "groups" && parts[2] == "hasMember":
		s.count("hasMember")
		if !s.authorize(w, r, ScopeMemberReadonly, ScopeGroupReadonly) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		g := s.dir.findGroup(parts[1])
		if g == nil {
			apiError(w, http.StatusNotFound, "notFound", "Resource Not Found: groupKey", "")
			return
		}
		u := s.dir.findUser(parts[3])
		is := false
		for _, m := range s.dir.derived(g.ID) {
			if u != nil && m.ID == u.ID || strings.EqualFold(m.Email, parts[3]) {
				is = true
			}
		}
		writeJSON(w, map[string]bool{"isMember": is})
	default:
		apiError(w, http.StatusNotFound, "notFound", "Not Found", "")
	}
}

// scopeIDs lists the ids of a listing restricted to the domain asked for
// (customer=my_customer or the fake's domain see everything).
func (s *Server) checkScope(w http.ResponseWriter, r *http.Request) bool {
	q := r.URL.Query()
	if q.Get("customer") == "" && q.Get("domain") == "" {
		apiError(w, http.StatusBadRequest, "badRequest", "Bad Request", "")
		return false
	}
	if d := q.Get("domain"); d != "" && !strings.EqualFold(d, s.Domain) {
		apiError(w, http.StatusForbidden, "forbidden", "Not Authorized to access this resource/api", "")
		return false
	}
	return true
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	if !s.checkScope(w, r) {
		return
	}
	s.mu.Lock()
	from, to, next, err := page(r, len(s.dir.userOrder), 100, 500)
	if err != nil {
		s.mu.Unlock()
		apiError(w, http.StatusBadRequest, "invalid", err.Error(), "")
		return
	}
	users := make([]map[string]any, 0, to-from)
	for _, id := range s.dir.userOrder[from:to] {
		users = append(users, userJSON(s.dir.users[id]))
	}
	s.mu.Unlock()
	doc := map[string]any{"kind": "admin#directory#users", "etag": "\"users\"", "users": users}
	if next != "" {
		doc["nextPageToken"] = next
	}
	writeJSON(w, doc)
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	if !s.checkScope(w, r) {
		return
	}
	s.mu.Lock()
	from, to, next, err := page(r, len(s.dir.groupOrder), 200, 200)
	if err != nil {
		s.mu.Unlock()
		apiError(w, http.StatusBadRequest, "invalid", err.Error(), "")
		return
	}
	groups := make([]map[string]any, 0, to-from)
	for _, id := range s.dir.groupOrder[from:to] {
		groups = append(groups, groupJSON(s.dir.groups[id], len(s.dir.members[id])))
	}
	s.mu.Unlock()
	doc := map[string]any{"kind": "admin#directory#groups", "etag": "\"groups\"", "groups": groups}
	if next != "" {
		doc["nextPageToken"] = next
	}
	writeJSON(w, doc)
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request, key string) {
	s.mu.Lock()
	g := s.dir.findGroup(key)
	if g == nil {
		s.mu.Unlock()
		apiError(w, http.StatusNotFound, "notFound", "Resource Not Found: groupKey", "")
		return
	}
	all := s.dir.members[g.ID]
	if r.URL.Query().Get("includeDerivedMembership") == "true" {
		all = s.dir.derived(g.ID)
	}
	from, to, next, err := page(r, len(all), 200, 200)
	if err != nil {
		s.mu.Unlock()
		apiError(w, http.StatusBadRequest, "invalid", err.Error(), "")
		return
	}
	members := make([]map[string]any, 0, to-from)
	for _, m := range all[from:to] {
		members = append(members, memberJSON(m))
	}
	s.mu.Unlock()
	doc := map[string]any{"kind": "admin#directory#members", "etag": "\"members\""}
	if len(members) > 0 {
		doc["members"] = members
	}
	if next != "" {
		doc["nextPageToken"] = next
	}
	writeJSON(w, doc)
}
