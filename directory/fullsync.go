package directory

import (
	"context"
	"errors"
	"fmt"

	admin "google.golang.org/api/admin/directory/v1"
	"google.golang.org/api/googleapi"

	"github.com/portcullis/portcullis/storage"
)

// Page sizes: the Directory API's maximums.
const (
	usersPageSize   = 500
	groupsPageSize  = 200
	membersPageSize = 200
	// Writes of one transaction are bounded so a large change stays under
	// the store's transaction limit.
	maxChangesPerTx = 500
)

// job is one full sync. Memory is bounded by a page of each listing plus
// one id per imported user and group (needed to tell who is gone once
// every listing has completed), never by the pages themselves.
type job struct {
	s   *Syncer
	ctx context.Context
	t   tally

	imported map[string]string // Google user id → store user id
	groups   []syncedGroup     // the groups imported this sync
	// mapped mode: the Google user ids in some mapped group, and each
	// mapped group's members (kept: few groups, listed once).
	wanted  map[string]bool
	members map[string][]string
}

type syncedGroup struct{ googleID, storeID string }

// fullSync lists groups, (mapped mode: their members), users, and
// memberships, applying each page as it comes; only when every listing
// completed does it deactivate users and delete groups that are gone.
func (s *Syncer) fullSync(ctx context.Context) (tally, error) {
	j := &job{s: s, ctx: ctx, imported: map[string]string{}}
	if err := s.api.checkToken(); err != nil {
		return j.t, err
	}
	mappedOnly := s.cfg.Users == UsersMappedGroups
	if err := j.syncGroups(mappedOnly); err != nil {
		return j.t, fmt.Errorf("listing groups: %w", err)
	}
	if mappedOnly {
		j.wanted, j.members = map[string]bool{}, map[string][]string{}
		for _, g := range j.groups {
			ids, err := j.listMembers(g.googleID)
			if err != nil {
				return j.t, fmt.Errorf("listing the members of group %s: %w", g.googleID, err)
			}
			j.members[g.googleID] = ids
			for _, id := range ids {
				j.wanted[id] = true
			}
		}
	}
	if err := j.syncUsers(); err != nil {
		return j.t, fmt.Errorf("listing users: %w", err)
	}
	if err := j.syncMemberships(); err != nil {
		return j.t, err
	}
	// Every listing completed: now, and only now, absence means gone.
	if err := j.deactivateGone(); err != nil {
		return j.t, err
	}
	if err := j.deleteGoneGroups(); err != nil {
		return j.t, err
	}
	return j.t, nil
}

func (j *job) listScope(users *admin.UsersListCall, groups *admin.GroupsListCall) {
	c := j.s.cfg
	if users != nil {
		if c.Customer != "" {
			users.Customer(c.Customer)
		} else {
			users.Domain(c.Domain)
		}
	}
	if groups != nil {
		if c.Customer != "" {
			groups.Customer(c.Customer)
		} else {
			groups.Domain(c.Domain)
		}
	}
}

// syncGroups lists every group (page by page) and writes the ones imported.
func (j *job) syncGroups(mappedOnly bool) error {
	token := ""
	for {
		call := j.s.api.dir.Groups.List().MaxResults(groupsPageSize).Context(j.ctx).
			Fields("nextPageToken", "groups(id,email,name,description)")
		j.listScope(nil, call)
		if token != "" {
			call.PageToken(token)
		}
		var page *admin.Groups
		if err := j.s.call(j.ctx, func() (err error) { page, err = call.Do(); return err }); err != nil {
			return err
		}
		var wants []*storage.Group
		for _, gg := range page.Groups {
			if mappedOnly && !j.s.mapped.match(gg) {
				continue
			}
			if g, ok := googleGroup(gg); ok {
				wants = append(wants, g)
			}
		}
		if err := j.writeGroups(wants); err != nil {
			return err
		}
		if token = page.NextPageToken; token == "" {
			return nil
		}
	}
}

func (j *job) writeGroups(wants []*storage.Group) error {
	_, err := planAndApply(j.ctx, j.s, &j.t, func(tx storage.ReadTx) ([]*groupChange, error) {
		var out []*groupChange
		for _, w := range wants {
			ch, err := planGroup(tx, w)
			if err != nil {
				return nil, err
			}
			if ch != nil {
				out = append(out, ch)
			}
		}
		return out, nil
	}, func(tx storage.Tx, cs []*groupChange, t *tally) error {
		for _, ch := range cs {
			if err := applyGroup(tx, ch, t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Store ids, now that every group of the page exists.
	return j.s.cfg.Store.View(j.ctx, j.s.cfg.Tenant, func(tx storage.ReadTx) error {
		for _, w := range wants {
			g, err := googleGroupByID(tx, w.ExternalID)
			if err != nil {
				return err
			}
			if g != nil {
				j.groups = append(j.groups, syncedGroup{googleID: w.ExternalID, storeID: g.ID})
			}
		}
		return nil
	})
}

// listMembers lists the users in the group, directly or through nested
// groups (includeDerivedMembership: Google flattens the nesting, and the
// store keeps groups flat because roles are read from a user's direct
// groups). Nested groups themselves, and members of type CUSTOMER, are
// left out; external addresses are kept here and dropped later, for they
// are no user of the domain.
func (j *job) listMembers(groupID string) ([]string, error) {
	var ids []string
	token := ""
	for {
		call := j.s.api.dir.Members.List(groupID).IncludeDerivedMembership(true).MaxResults(membersPageSize).
			Context(j.ctx).Fields("nextPageToken", "members(id,email,type,status)")
		if token != "" {
			call.PageToken(token)
		}
		var page *admin.Members
		if err := j.s.call(j.ctx, func() (err error) { page, err = call.Do(); return err }); err != nil {
			return nil, err
		}
		for _, m := range page.Members {
			if m.Type == "USER" && m.Id != "" {
				ids = append(ids, m.Id)
			}
		}
		if token = page.NextPageToken; token == "" {
			return ids, nil
		}
	}
}

// syncUsers lists every user, page by page, writing each page's changes in
// one transaction (smaller ones if a page holds a userName conflict).
func (j *job) syncUsers() error {
	mappedOnly := j.wanted != nil
	token := ""
	for {
		call := j.s.api.dir.Users.List().MaxResults(usersPageSize).Projection("basic").Context(j.ctx).
			Fields("nextPageToken", "users(id,primaryEmail,name,suspended,archived,aliases)")
		j.listScope(call, nil)
		if token != "" {
			call.PageToken(token)
		}
		var page *admin.Users
		if err := j.s.call(j.ctx, func() (err error) { page, err = call.Do(); return err }); err != nil {
			return err
		}
		var wants []*storage.User
		for _, gu := range page.Users {
			if mappedOnly && !j.wanted[gu.Id] {
				continue
			}
			if u, ok := googleUser(gu, activeInGoogle(gu)); ok {
				wants = append(wants, u)
			}
		}
		if err := j.writeUsers(wants); err != nil {
			return err
		}
		if token = page.NextPageToken; token == "" {
			return nil
		}
	}
}

func (j *job) writeUsers(wants []*storage.User) error {
	skipped := 0
	plan := func(wants []*storage.User) func(tx storage.ReadTx) ([]*userChange, error) {
		return func(tx storage.ReadTx) ([]*userChange, error) {
			skipped = 0
			var out []*userChange
			for _, w := range wants {
				ch, skip, err := planUser(tx, w)
				if err != nil {
					return nil, err
				}
				if skip {
					skipped++
				}
				if ch != nil {
					out = append(out, ch)
				}
			}
			return out, nil
		}
	}
	apply := func(tx storage.Tx, cs []*userChange, t *tally) error {
		for _, ch := range cs {
			if err := applyUser(tx, ch, t); err != nil {
				return err
			}
		}
		return nil
	}
	_, err := planAndApply(j.ctx, j.s, &j.t, plan(wants), apply)
	if errors.Is(err, storage.ErrUniqueness) {
		// Two users of the page swapped addresses, or one took the address
		// of a user the next page renames: write one at a time and leave
		// the one that still conflicts for the next sync.
		err = nil
		total := 0
		for _, w := range wants {
			_, e := planAndApply(j.ctx, j.s, &j.t, plan([]*storage.User{w}), apply)
			total += skipped
			if errors.Is(e, storage.ErrUniqueness) {
				j.t.counts.UsersSkipped++
				j.s.cfg.Logger.Warn("google user skipped: its userName is taken",
					zapString("tenant", j.s.cfg.Tenant), zapString("googleId", w.ExternalID))
				continue
			}
			if e != nil {
				return e
			}
		}
		skipped = total
	}
	if err != nil {
		return err
	}
	j.t.counts.UsersSkipped += skipped
	return j.s.cfg.Store.View(j.ctx, j.s.cfg.Tenant, func(tx storage.ReadTx) error {
		for _, w := range wants {
			u, err := googleUserByID(tx, w.ExternalID)
			if err != nil {
				return err
			}
			if u != nil {
				j.imported[w.ExternalID] = u.ID
			}
		}
		return nil
	})
}

// syncMemberships brings each imported group's members to what Google
// lists, for the imported users.
func (j *job) syncMemberships() error {
	for _, g := range j.groups {
		var ids []string
		if j.members != nil {
			ids = j.members[g.googleID]
		} else {
			var err error
			if ids, err = j.listMembers(g.googleID); err != nil {
				return fmt.Errorf("listing the members of group %s: %w", g.googleID, err)
			}
		}
		want := make(map[string]bool, len(ids))
		for _, id := range ids {
			if sid, ok := j.imported[id]; ok {
				want[sid] = true
			}
		}
		if err := j.writeMembers(g.storeID, want); err != nil {
			return err
		}
	}
	return nil
}

func (j *job) writeMembers(groupID string, want map[string]bool) error {
	_, err := planAndApply(j.ctx, j.s, &j.t, func(tx storage.ReadTx) ([]*memberChange, error) {
		ch, err := planMembers(tx, groupID, want)
		if ch == nil || err != nil {
			return nil, err
		}
		return []*memberChange{ch}, nil
	}, func(tx storage.Tx, cs []*memberChange, t *tally) error {
		return applyMembers(tx, cs[0], t)
	})
	return err
}

// deactivateGone turns off the Google users of the store that this
// (complete) sync did not import: deleted in Google, or, with
// mapped_groups, in no mapped group any more. Records are kept.
func (j *job) deactivateGone() error {
	var gone []string
	err := j.s.cfg.Store.View(j.ctx, j.s.cfg.Tenant, func(tx storage.ReadTx) error {
		return tx.ScanUsers("", func(u *storage.User) (bool, error) {
			if u.Source == storage.SourceGoogle && u.Active {
				if _, ok := j.imported[u.ExternalID]; !ok {
					gone = append(gone, u.ID)
				}
			}
			return true, nil
		})
	})
	if err != nil {
		return err
	}
	reason := "not in Google's user listing"
	if j.wanted != nil {
		reason = "not in Google's user listing or in no mapped group"
	}
	for len(gone) > 0 {
		n := min(len(gone), maxChangesPerTx)
		batch := gone[:n]
		gone = gone[n:]
		_, err := planAndApply(j.ctx, j.s, &j.t, func(tx storage.ReadTx) ([]*userChange, error) {
			return planDeactivations(tx, batch, reason)
		}, func(tx storage.Tx, cs []*userChange, t *tally) error {
			for _, ch := range cs {
				if err := applyUser(tx, ch, t); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// deleteGoneGroups deletes the Google groups of the store this (complete)
// sync did not import.
func (j *job) deleteGoneGroups() error {
	seen := make(map[string]bool, len(j.groups))
	for _, g := range j.groups {
		seen[g.storeID] = true
	}
	var gone []string
	err := j.s.cfg.Store.View(j.ctx, j.s.cfg.Tenant, func(tx storage.ReadTx) error {
		return tx.ScanGroups("", func(g *storage.Group) (bool, error) {
			if g.Source == storage.SourceGoogle && !seen[g.ID] {
				gone = append(gone, g.ID)
			}
			return true, nil
		})
	})
	if err != nil {
		return err
	}
	for _, id := range gone {
		_, err := planAndApply(j.ctx, j.s, &j.t, func(tx storage.ReadTx) ([]*storage.Group, error) {
			g, err := tx.GetGroup(id)
			if errors.Is(err, storage.ErrNotFound) {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			return []*storage.Group{g}, nil
		}, func(tx storage.Tx, gs []*storage.Group, t *tally) error {
			return deleteGroup(tx, gs[0], "not in Google's group listing (or no longer mapped)", t)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// isNotFound says Google answered 404.
func isNotFound(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == 404
}
