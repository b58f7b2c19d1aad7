package directory

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	admin "google.golang.org/api/admin/directory/v1"
	reports "google.golang.org/api/admin/reports/v1"

	"github.com/portcullis/portcullis/storage"
)

// Admin activity events (Reports API, applicationName=admin) that take
// access away, with the parameter naming who or what.
const (
	eventSuspendUser       = "SUSPEND_USER"        // USER_EMAIL
	eventArchiveUser       = "ARCHIVE_USER"        // USER_EMAIL
	eventDeleteUser        = "DELETE_USER"         // USER_EMAIL
	eventRemoveGroupMember = "REMOVE_GROUP_MEMBER" // USER_EMAIL, GROUP_EMAIL
	eventDeleteGroup       = "DELETE_GROUP"        // GROUP_EMAIL
)

// PollActivity reads the admin activities since the cursor (minus
// ActivityOverlap, for Google's reporting lag) and applies each one that
// takes access away, after refetching its user or group from the
// Directory API: the event says where to look, the Directory says what is
// true now. A poll due during a full sync is skipped (nil); a failure
// leaves the cursor where it was, so the next poll reads the same events.
func (s *Syncer) PollActivity(ctx context.Context) error {
	if !s.work.TryLock() {
		return nil
	}
	defer s.work.Unlock()
	pollStart := time.Now().UTC()
	t := &tally{}
	err := s.pollActivity(ctx, t)
	s.notifyDeprovisioned(t.deprovisioned)
	s.mu.Lock()
	s.status.LastActivityPoll = pollStart
	s.status.ActivityError = ""
	if err != nil {
		s.status.ActivityError = err.Error()
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.cursor = pollStart
	for k, at := range s.seen {
		if at.Before(s.cursor.Add(-s.cfg.ActivityOverlap)) {
			delete(s.seen, k)
		}
	}
	return nil
}

func (s *Syncer) pollActivity(ctx context.Context, t *tally) error {
	since := s.cursor.Add(-s.cfg.ActivityOverlap)
	token := ""
	for {
		call := s.api.rep.Activities.List("all", "admin").StartTime(since.Format(time.RFC3339)).
			MaxResults(1000).Context(ctx)
		if s.cfg.Customer != "" && s.cfg.Customer != "my_customer" {
			call.CustomerId(s.cfg.Customer)
		}
		if token != "" {
			call.PageToken(token)
		}
		var page *reports.Activities
		if err := s.call(ctx, func() (err error) { page, err = call.Do(); return err }); err != nil {
			return fmt.Errorf("listing admin activities: %w", err)
		}
		for _, a := range page.Items {
			if a.Id == nil {
				continue
			}
			key := a.Id.Time + "/" + strconv.FormatInt(a.Id.UniqueQualifier, 10)
			if _, done := s.seen[key]; done {
				continue
			}
			for _, ev := range a.Events {
				if err := s.applyActivity(ctx, ev, t); err != nil {
					return fmt.Errorf("applying %s: %w", ev.Name, err)
				}
			}
			at, _ := time.Parse(time.RFC3339, a.Id.Time)
			s.seen[key] = at
		}
		if token = page.NextPageToken; token == "" {
			return nil
		}
	}
}

func param(ev *reports.ActivityEvents, name string) string {
	for _, p := range ev.Parameters {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

func (s *Syncer) applyActivity(ctx context.Context, ev *reports.ActivityEvents, t *tally) error {
	before := t.counts
	var err error
	switch ev.Name {
	case eventSuspendUser, eventArchiveUser, eventDeleteUser:
		err = s.recheckUser(ctx, param(ev, "USER_EMAIL"), t)
	case eventRemoveGroupMember:
		err = s.recheckMembership(ctx, param(ev, "USER_EMAIL"), t)
	case eventDeleteGroup:
		err = s.recheckGroup(ctx, param(ev, "GROUP_EMAIL"), t)
	default:
		return nil
	}
	if err == nil && t.counts != before {
		s.mu.Lock()
		s.status.ActivityApplied++
		s.mu.Unlock()
	}
	return err
}

// recheckUser refetches a stored Google user: deleted (404), suspended or
// archived in Google → deactivated now, sessions ended.
func (s *Syncer) recheckUser(ctx context.Context, email string, t *tally) error {
	u, err := s.storedUserByEmail(ctx, email)
	if err != nil || u == nil || !u.Active {
		return err
	}
	var gu *admin.User
	err = s.call(ctx, func() (err error) {
		gu, err = s.api.dir.Users.Get(u.ExternalID).Projection("basic").Context(ctx).Do()
		return err
	})
	reason := ""
	switch {
	case isNotFound(err):
		reason = "deleted in Google (admin activity)"
	case err != nil:
		return err
	case gu.Suspended:
		reason = "suspended in Google (admin activity)"
	case gu.Archived:
		reason = "archived in Google (admin activity)"
	default:
		return nil // active again by now: the full sync handles the rest
	}
	return s.deactivate(ctx, []string{u.ID}, reason, t)
}

// recheckMembership asks Google whether the user is still, directly or
// through nesting, in each Google group the store has them in, and drops
// the memberships that are gone. With mapped_groups, a user left in no
// group is deactivated.
func (s *Syncer) recheckMembership(ctx context.Context, email string, t *tally) error {
	u, err := s.storedUserByEmail(ctx, email)
	if err != nil || u == nil {
		return err
	}
	var groups []*storage.Group
	err = s.cfg.Store.View(ctx, s.cfg.Tenant, func(tx storage.ReadTx) error {
		ids, err := googleGroupsOf(tx, u.ID)
		for _, id := range ids {
			g, err := tx.GetGroup(id)
			if err != nil {
				return err
			}
			groups = append(groups, g)
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, g := range groups {
		var res *admin.MembersHasMember
		err := s.call(ctx, func() (err error) {
			res, err = s.api.dir.Members.HasMember(g.ExternalID, u.ExternalID).Context(ctx).Do()
			return err
		})
		if isNotFound(err) {
			continue // the group is gone: DELETE_GROUP or the full sync
		}
		if err != nil {
			return err
		}
		if res.IsMember {
			continue
		}
		if _, err := planAndApply(ctx, s, t, func(tx storage.ReadTx) ([]*memberChange, error) {
			in, err := tx.IsMember(g.ID, u.ID)
			if !in || err != nil {
				return nil, err
			}
			return []*memberChange{{groupID: g.ID, removes: []string{u.ID}}}, nil
		}, func(tx storage.Tx, cs []*memberChange, t *tally) error {
			return applyMembers(tx, cs[0], t)
		}); err != nil {
			return err
		}
	}
	return s.deactivateUnmapped(ctx, []string{u.ID}, t)
}

// recheckGroup deletes a stored Google group that Google no longer has.
func (s *Syncer) recheckGroup(ctx context.Context, email string, t *tally) error {
	var g *storage.Group
	var members []string
	err := s.cfg.Store.View(ctx, s.cfg.Tenant, func(tx storage.ReadTx) error {
		return tx.ScanGroups("", func(c *storage.Group) (bool, error) {
			if c.Source == storage.SourceGoogle && email != "" && equalFold(groupEmail(c), email) {
				g = c
				return false, tx.Members(c.ID, func(m storage.Member) (bool, error) {
					members = append(members, m.ID)
					return true, nil
				})
			}
			return true, nil
		})
	})
	if err != nil || g == nil {
		return err
	}
	err = s.call(ctx, func() error {
		_, err := s.api.dir.Groups.Get(g.ExternalID).Context(ctx).Do()
		return err
	})
	if !isNotFound(err) {
		return err // still there (nil), or a failure
	}
	if _, err := planAndApply(ctx, s, t, func(tx storage.ReadTx) ([]*storage.Group, error) {
		cur, err := tx.GetGroup(g.ID)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, nil
		}
		return []*storage.Group{cur}, err
	}, func(tx storage.Tx, gs []*storage.Group, t *tally) error {
		return deleteGroup(tx, gs[0], "deleted in Google (admin activity)", t)
	}); err != nil {
		return err
	}
	return s.deactivateUnmapped(ctx, members, t)
}

// deactivateUnmapped: with mapped_groups, the users among ids left in no
// Google group have lost their reason to be imported.
func (s *Syncer) deactivateUnmapped(ctx context.Context, ids []string, t *tally) error {
	if s.cfg.Users != UsersMappedGroups {
		return nil
	}
	var lone []string
	err := s.cfg.Store.View(ctx, s.cfg.Tenant, func(tx storage.ReadTx) error {
		for _, id := range ids {
			gs, err := googleGroupsOf(tx, id)
			if err != nil {
				return err
			}
			if len(gs) == 0 {
				lone = append(lone, id)
			}
		}
		return nil
	})
	if err != nil || len(lone) == 0 {
		return err
	}
	return s.deactivate(ctx, lone, "in no mapped group (admin activity)", t)
}

func (s *Syncer) deactivate(ctx context.Context, ids []string, reason string, t *tally) error {
	_, err := planAndApply(ctx, s, t, func(tx storage.ReadTx) ([]*userChange, error) {
		return planDeactivations(tx, ids, reason)
	}, func(tx storage.Tx, cs []*userChange, t *tally) error {
		for _, ch := range cs {
			if err := applyUser(tx, ch, t); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

func (s *Syncer) storedUserByEmail(ctx context.Context, email string) (*storage.User, error) {
	if email == "" {
		return nil, nil
	}
	var u *storage.User
	err := s.cfg.Store.View(ctx, s.cfg.Tenant, func(tx storage.ReadTx) error {
		var err error
		u, err = googleUserByEmail(tx, email)
		return err
	})
	return u, err
}
