package operator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/storage"
)

// Page sizes of ListUsers.
const (
	DefaultLimit = 50
	MaxLimit     = 500
	// maxScanPerPage bounds the users a filtered page examines: a page
	// that finds fewer than Limit matches among them ends early with a
	// Next cursor, so one request never walks the whole tenant.
	maxScanPerPage = 20000
	// maxUserNameLen bounds a manual user's userName and email (as the
	// sign-in code bounds claims).
	maxUserNameLen = 256
)

// ListUsers returns one page of users in id order, and the cursor of the
// next page ("" when this is the last). A page reads only its own users
// (ScanUsers from the cursor). A filtered page (text or source) goes
// through the in-memory search index (userindex.go) when there is one,
// else scans on from the cursor, at most maxScanPerPage users per page.
func (s *Service) ListUsers(ctx context.Context, q UserQuery) ([]User, string, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	if len(q.Filter) > maxUserNameLen || len(q.Cursor) > 512 {
		return nil, "", fmt.Errorf("%w: filter or cursor too long", ErrInvalid)
	}
	filter := strings.ToLower(strings.TrimSpace(q.Filter))
	filtered := filter != "" || q.Source != ""
	var idx *userIndex
	var recent []indexEntry
	if filtered {
		idx, recent = s.searchIndex(s.store.Generation(s.tenant))
	}
	var out []User
	next := ""
	err := s.view(ctx, func(tx storage.ReadTx, t *authz.RoleTable) error {
		out, next = out[:0], ""
		pc := newPageCache(tx)
		if idx != nil {
			return s.indexedPage(tx, t, pc, idx, recent, q.Cursor, filter, q.Source, limit, &out, &next)
		}
		scanned := 0
		return tx.ScanUsers(q.Cursor, func(u *storage.User) (bool, error) {
			if len(out) == limit {
				next = out[len(out)-1].ID
				return false, nil
			}
			scanned++
			if filtered && scanned > maxScanPerPage {
				next = u.ID
				return false, nil
			}
			if (q.Source != "" && u.Source != q.Source) || !matches(u, filter) {
				return true, nil
			}
			v, err := s.userView(tx, t, pc, u)
			if err != nil {
				return false, err
			}
			out = append(out, v)
			return true, nil
		})
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// indexedPage fills a filtered page from the search index: its candidates
// are read again in tx and checked, so a stale index never shows a user
// who no longer matches. On the first page, the store's exact userName and
// email indexes add a user created since the index was built.
func (s *Service) indexedPage(tx storage.ReadTx, t *authz.RoleTable, pc *pageCache, idx *userIndex, recent []indexEntry,
	cursor, filter, source string, limit int, out *[]User, next *string) error {
	ids, more := idx.candidates(recent, cursor, filter, source, limit)
	seen := map[string]bool{}
	add := func(u *storage.User) error {
		if seen[u.ID] || (source != "" && u.Source != source) || !matches(u, filter) {
			return nil
		}
		seen[u.ID] = true
		v, err := s.userView(tx, t, pc, u)
		if err == nil {
			*out = append(*out, v)
		}
		return err
	}
	for _, id := range ids {
		u, err := tx.GetUser(id)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := add(u); err != nil {
			return err
		}
	}
	if more && len(ids) > 0 {
		*next = ids[len(ids)-1]
	}
	if cursor == "" && filter != "" && len(*out) < limit && idx.gen != s.store.Generation(s.tenant) {
		if u, err := tx.UserByUserName(filter); err == nil {
			if err := add(u); err != nil {
				return err
			}
		} else if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if strings.Contains(filter, "@") {
			byEmail, err := tx.UsersByEmail(filter)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			for _, u := range byEmail {
				if err := add(u); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// matches: a case-insensitive substring of userName or displayName, or a
// prefix of an email (filter is lower-cased).
func matches(u *storage.User, filter string) bool {
	if filter == "" {
		return true
	}
	if containsFold(u.UserName, filter) || containsFold(u.DisplayName, filter) {
		return true
	}
	for _, e := range u.Emails {
		if len(e) >= len(filter) && strings.EqualFold(e[:len(filter)], filter) {
			return true
		}
	}
	return false
}

// containsFold is strings.Contains(strings.ToLower(s), lowerSub) without
// allocating for ASCII s.
func containsFold(s, lowerSub string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 {
			return strings.Contains(strings.ToLower(s), lowerSub)
		}
	}
	n := len(lowerSub)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lowerSub[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}

// pageCache keeps the group names one page reads.
type pageCache struct {
	tx     storage.ReadTx
	groups map[string]*storage.Group
}

func newPageCache(tx storage.ReadTx) *pageCache {
	return &pageCache{tx: tx, groups: map[string]*storage.Group{}}
}

func (c *pageCache) group(id string) (*storage.Group, error) {
	if g, ok := c.groups[id]; ok {
		return g, nil
	}
	g, err := c.tx.GetGroup(id)
	if errors.Is(err, storage.ErrNotFound) {
		g, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.groups[id] = g
	return g, nil
}

// userView is u as the operator sees it, with its groups, role, live
// sessions and last sign-in.
func (s *Service) userView(tx storage.ReadTx, t *authz.RoleTable, pc *pageCache, u *storage.User) (User, error) {
	v, _, err := s.userViewReason(tx, t, pc, u)
	return v, err
}

func (s *Service) userViewReason(tx storage.ReadTx, t *authz.RoleTable, pc *pageCache, u *storage.User) (User, authz.RoleReason, error) {
	v := User{ID: u.ID, UserName: u.UserName, DisplayName: u.DisplayName, Emails: u.Emails, Active: u.Active,
		Source: u.Source, Groups: []GroupBrief{}}
	groupIDs, err := tx.GroupsOf(u.ID)
	if err != nil {
		return v, authz.RoleReason{}, err
	}
	for _, gid := range groupIDs {
		g, err := pc.group(gid)
		if err != nil {
			return v, authz.RoleReason{}, err
		}
		if g != nil {
			v.Groups = append(v.Groups, GroupBrief{ID: g.ID, DisplayName: g.DisplayName})
		}
	}
	rr := t.Resolve(u, groupIDs)
	if u.Active {
		v.Role = rr.Role
	}
	sessions, err := tx.SessionsOf(u.ID)
	if err != nil {
		return v, rr, err
	}
	now := s.now()
	for _, ss := range sessions {
		if !ss.Expired(now, s.idle) {
			v.Sessions++
		}
	}
	if at, ok, err := storage.LastSignIn(tx, u.ID); err != nil {
		return v, rr, err
	} else if ok {
		v.LastSignIn = &at
	} else {
		// Before the record existed: the newest session's start.
		for _, ss := range sessions {
			if v.LastSignIn == nil || ss.Created.After(*v.LastSignIn) {
				c := ss.Created
				v.LastSignIn = &c
			}
		}
	}
	return v, rr, nil
}

// User returns one user with the reason for their role.
func (s *Service) User(ctx context.Context, id string) (*UserDetail, error) {
	var d *UserDetail
	err := s.view(ctx, func(tx storage.ReadTx, t *authz.RoleTable) error {
		var err error
		d, err = s.userDetail(tx, t, id)
		return err
	})
	return d, err
}

func (s *Service) userDetail(tx storage.ReadTx, t *authz.RoleTable, id string) (*UserDetail, error) {
	u, err := getUser(tx, id)
	if err != nil {
		return nil, err
	}
	pc := newPageCache(tx)
	v, rr, err := s.userViewReason(tx, t, pc, u)
	if err != nil {
		return nil, err
	}
	reason, err := s.roleReason(pc, u, rr)
	if err != nil {
		return nil, err
	}
	groupIDs, err := tx.GroupsOf(u.ID)
	if err != nil {
		return nil, err
	}
	if reason.Routes, err = s.routeAccess(tx, u, groupIDs, rr); err != nil {
		return nil, err
	}
	return &UserDetail{User: v, RoleReason: reason}, nil
}

func getUser(tx storage.ReadTx, id string) (*storage.User, error) {
	if id == "" || len(id) > 512 {
		return nil, ErrNotFound
	}
	u, err := tx.GetUser(id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNotFound
	}
	return u, err
}

// roleReason says rr in the operator's words.
func (s *Service) roleReason(pc *pageCache, u *storage.User, rr authz.RoleReason) (RoleReason, error) {
	out := RoleReason{Role: rr.Role, From: rr.From}
	name := u.UserName
	switch rr.From {
	case authz.RoleFromManual:
		out.Text = fmt.Sprintf("%s is a manual user: the role %s was set by hand", name, rr.Role)
	case authz.RoleFromGroup:
		g, err := pc.group(rr.GroupID)
		if err != nil {
			return out, err
		}
		gb := GroupBrief{ID: rr.GroupID}
		if g != nil {
			gb.DisplayName = g.DisplayName
		}
		out.Group, out.MappingFrom = &gb, rr.MappingFrom
		where := "a mapping stored at runtime"
		if rr.MappingFrom == authz.MappingFromConfig {
			where = "map_group in the config"
		}
		out.Text = fmt.Sprintf("%s is a member of %q, which %s maps to %s (the highest of their groups)",
			name, gb.DisplayName, where, rr.Role)
	case authz.RoleFromDefault:
		if rr.Role == "" {
			out.Text = "the tenant has no roles: users are only signed in"
		} else {
			out.Text = fmt.Sprintf("%s is in no mapped group, so has the default role %s", name, rr.Role)
		}
	case authz.RoleFromNone:
		out.Text = fmt.Sprintf("%s is in no mapped group and the tenant requires one (require_mapped_group): refused", name)
	}
	if !u.Active {
		out.Text += "; the user is deactivated, so has no access"
	}
	return out, nil
}

// managed refuses a manual change to an IdP-managed user.
func managed(u *storage.User, what string) error {
	if !storage.IdPManaged(u.Source) {
		return nil
	}
	var msg string
	switch u.Source {
	case storage.SourceSCIM:
		msg = fmt.Sprintf("%s is managed by your IdP over SCIM, so cannot %s here: change them in the IdP (their role follows their groups there), or disconnect the IdP to manage users here", u.UserName, what)
	case storage.SourceGoogle, storage.SourceDirectory:
		msg = fmt.Sprintf("%s is pulled from Google Workspace, so cannot %s here: change them in the Google Admin console, or disconnect the directory to manage users here", u.UserName, what)
	case storage.SourceJIT:
		msg = fmt.Sprintf("%s was created by your IdP at sign-in and is refreshed from its claims at every sign-in, so cannot %s here: change them in the IdP (or map their groups here), or disconnect the IdP to manage users here", u.UserName, what)
	default:
		msg = fmt.Sprintf("%s is managed by your IdP (%s), so cannot %s here", u.UserName, u.Source, what)
	}
	return &ManagedError{UserID: u.ID, Source: u.Source, Message: msg}
}

// role checks a role given by an operator and returns the tenant's
// spelling of it.
func (s *Service) role(role string) (string, error) {
	if len(s.roles.Levels) == 0 {
		if role != "" {
			return "", fmt.Errorf("%w: the tenant has no roles; leave the role empty", ErrInvalid)
		}
		return "", nil
	}
	for _, l := range s.roles.Levels {
		if strings.EqualFold(l, role) {
			return l, nil
		}
	}
	return "", fmt.Errorf("%w: role %q is not one of %s", ErrInvalid, role, strings.Join(s.roles.Levels, ", "))
}

func plausibleEmail(e string) bool {
	at := strings.LastIndexByte(e, '@')
	return at > 0 && at < len(e)-1 && len(e) <= maxUserNameLen && !strings.ContainsAny(e, " \t\r\n<>,;\"")
}

func validName(s string) bool {
	if s == "" || len(s) > maxUserNameLen {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7F {
			return false
		}
	}
	return true
}

// CreateManualUser creates a user an operator manages, with a role set by
// hand. They sign in through the tenant's IdP and are matched to this
// record by userName or verified email.
func (s *Service) CreateManualUser(ctx context.Context, actor string, nu NewUser) (*UserDetail, error) {
	nu.UserName = strings.TrimSpace(nu.UserName)
	nu.Email = strings.ToLower(strings.TrimSpace(nu.Email))
	nu.DisplayName = strings.TrimSpace(nu.DisplayName)
	if !validName(nu.UserName) {
		return nil, fmt.Errorf("%w: userName is required (1 to %d characters, no control characters)", ErrInvalid, maxUserNameLen)
	}
	if nu.Email != "" && !plausibleEmail(nu.Email) {
		return nil, fmt.Errorf("%w: email %q is not an email address", ErrInvalid, nu.Email)
	}
	if nu.DisplayName != "" && !validName(nu.DisplayName) {
		return nil, fmt.Errorf("%w: displayName is too long or has control characters", ErrInvalid)
	}
	role, err := s.role(nu.Role)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	u := &storage.User{ID: storage.NewID(), UserName: nu.UserName, DisplayName: nu.DisplayName, Active: true,
		Source: storage.SourceManual, Role: role, Created: now, Modified: now}
	if nu.Email != "" {
		u.Emails = []string{nu.Email}
	}
	var d *UserDetail
	var written *storage.User
	err = s.update(ctx, func(tx storage.Tx) error {
		written = nil
		if other, err := tx.UserByUserName(u.UserName); err == nil {
			return fmt.Errorf("%w: userName %q is taken by another user (%s, %s)", ErrConflict, u.UserName, other.ID, other.Source)
		} else if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		rec := *u
		if err := tx.PutUser(&rec); err != nil {
			if errors.Is(err, storage.ErrUniqueness) {
				return fmt.Errorf("%w: userName %q is taken by another user", ErrConflict, u.UserName)
			}
			return err
		}
		written = &rec
		return tx.AppendEvent(storage.Event{Type: storage.EventUserManualCreated, Actor: actor, ResourceType: "User",
			ResourceID: u.ID, After: fmt.Sprintf("%s role=%s", u.UserName, role)})
	})
	if err != nil {
		return nil, err
	}
	s.NoteUser(written)
	d, err = s.User(ctx, u.ID)
	return d, err
}

// UpdateUser changes a manual user's role or status. Deactivating ends
// their sessions (effective on their next request).
func (s *Service) UpdateUser(ctx context.Context, actor, id string, c UserChange) (*UserDetail, error) {
	var role string
	if c.Role != nil {
		var err error
		if role, err = s.role(*c.Role); err != nil {
			return nil, err
		}
	}
	var written *storage.User
	err := s.update(ctx, func(tx storage.Tx) error {
		written = nil
		u, err := getUser(tx, id)
		if err != nil {
			return err
		}
		if err := managed(u, "be changed"); err != nil {
			return err
		}
		next := *u
		var events []storage.Event
		if c.Role != nil && role != u.Role {
			next.Role = role
			events = append(events, storage.Event{Type: storage.EventUserRoleChanged, Actor: actor, ResourceType: "User",
				ResourceID: u.ID, Before: "role=" + u.Role, After: "role=" + role})
		}
		if c.Active != nil && *c.Active != u.Active {
			next.Active = *c.Active
			ev := storage.Event{Type: storage.EventUserReactivated, Actor: actor, ResourceType: "User",
				ResourceID: u.ID, Before: "active=false", After: "active=true"}
			if !next.Active {
				n, err := tx.DeleteSessionsOf(u.ID)
				if err != nil {
					return err
				}
				ev = storage.Event{Type: storage.EventUserDeactivated, Actor: actor, ResourceType: "User",
					ResourceID: u.ID, Before: "active=true", After: "active=false", Reason: fmt.Sprintf("%d sessions ended", n)}
			}
			events = append(events, ev)
		}
		if len(events) == 0 {
			return nil
		}
		next.Modified = s.now().UTC()
		if err := tx.PutUser(&next); err != nil {
			return err
		}
		written = &next
		for _, e := range events {
			if err := tx.AppendEvent(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.NoteUser(written)
	return s.User(ctx, id)
}

// DeleteUser deletes a manual user, their memberships and sessions.
func (s *Service) DeleteUser(ctx context.Context, actor, id string) error {
	return s.update(ctx, func(tx storage.Tx) error {
		u, err := getUser(tx, id)
		if err != nil {
			return err
		}
		if err := managed(u, "be deleted"); err != nil {
			return err
		}
		if err := tx.DeleteUser(u.ID); err != nil {
			return err
		}
		return tx.AppendEvent(storage.Event{Type: storage.EventUserDeleted, Actor: actor, ResourceType: "User",
			ResourceID: u.ID, Before: u.UserName})
	})
}

// update runs fn in a write transaction that is not cancelled once
// started (an operator's change completes with its audit event).
func (s *Service) update(ctx context.Context, fn func(tx storage.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return s.store.Update(ctx, s.tenant, fn)
}
