package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// Every write goes the same way: the change is planned in a read-only
// snapshot first, and a read-write transaction is opened only when the
// plan is not empty, where it is planned again (the store may have moved)
// and applied. A sync that finds nothing to change so never opens a write
// transaction: no fsync, no Generation move, no cache invalidated.

// tally is what applied writes did; a transaction retried on conflict
// starts a fresh one, merged into the sync's only once committed.
type tally struct {
	counts        Counts
	deprovisioned []string // users whose deactivation ended their sessions
}

func (t *tally) merge(o *tally) {
	c, d := &t.counts, o.counts
	c.UsersCreated += d.UsersCreated
	c.UsersUpdated += d.UsersUpdated
	c.UsersDeactivated += d.UsersDeactivated
	c.UsersReactivated += d.UsersReactivated
	c.UsersSkipped += d.UsersSkipped
	c.GroupsCreated += d.GroupsCreated
	c.GroupsUpdated += d.GroupsUpdated
	c.GroupsDeleted += d.GroupsDeleted
	c.MembershipsAdded += d.MembershipsAdded
	c.MembershipsRemoved += d.MembershipsRemoved
	t.deprovisioned = append(t.deprovisioned, o.deprovisioned...)
}

// planAndApply is that pattern; it returns the changes applied and adds
// what they did to into.
func planAndApply[C any](ctx context.Context, s *Syncer, into *tally, plan func(storage.ReadTx) ([]C, error), apply func(storage.Tx, []C, *tally) error) ([]C, error) {
	var cs []C
	err := s.cfg.Store.View(ctx, s.cfg.Tenant, func(tx storage.ReadTx) error {
		var err error
		cs, err = plan(tx)
		return err
	})
	if err != nil || len(cs) == 0 {
		return nil, err
	}
	var t tally
	err = s.cfg.Store.Update(ctx, s.cfg.Tenant, func(tx storage.Tx) error {
		t = tally{}
		var err error
		if cs, err = plan(tx); err != nil || len(cs) == 0 {
			return err
		}
		return apply(tx, cs, &t)
	})
	if err != nil {
		return nil, err
	}
	into.merge(&t)
	return cs, nil
}

// googleUserByID finds the stored user Google knows by id.
func googleUserByID(tx storage.ReadTx, googleID string) (*storage.User, error) {
	us, err := tx.UsersByExternalID(googleID)
	return firstFromGoogle(us, err, func(u *storage.User) string { return u.Source })
}

// googleUserByEmail finds a Google-sourced user by any of its addresses.
func googleUserByEmail(tx storage.ReadTx, email string) (*storage.User, error) {
	us, err := tx.UsersByEmail(email)
	return firstFromGoogle(us, err, func(u *storage.User) string { return u.Source })
}

func googleGroupByID(tx storage.ReadTx, googleID string) (*storage.Group, error) {
	gs, err := tx.GroupsByExternalID(googleID)
	return firstFromGoogle(gs, err, func(g *storage.Group) string { return g.Source })
}

// firstFromGoogle keeps, of an index lookup's results, the first whose
// source is Google (another source's record of the same key is not ours).
func firstFromGoogle[T any](found []*T, err error, source func(*T) string) (*T, error) {
	if err != nil {
		return nil, err
	}
	for _, r := range found {
		if source(r) == storage.SourceGoogle {
			return r, nil
		}
	}
	return nil, nil
}

// userChange is one user write: before nil creates.
type userChange struct {
	before, next *storage.User
	reason       string
}

// planUser compares the stored user with want (a Google user in storage
// form, without id). A user created at sign-in (jit) under the same
// userName is taken over; one managed by anything else is left alone
// (skip), since a tenant is provisioned by one source.
func planUser(tx storage.ReadTx, want *storage.User) (ch *userChange, skip bool, err error) {
	before, err := googleUserByID(tx, want.ExternalID)
	if err != nil {
		return nil, false, err
	}
	if before == nil {
		other, err := tx.UserByUserName(want.UserName)
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return nil, false, err
		case other.Source == storage.SourceJIT || (other.Source == storage.SourceGoogle && other.ExternalID == ""):
			before = other
		default:
			return nil, true, nil
		}
	}
	next := *want
	if before == nil {
		next.ID = storage.NewID()
		return &userChange{next: &next}, false, nil
	}
	next.ID, next.Created, next.Version = before.ID, before.Created, before.Version
	if sameUser(before, &next) {
		return nil, false, nil
	}
	return &userChange{before: before, next: &next}, false, nil
}

// applyUser writes one planned user with its audit event. Deactivation ends
// the user's sessions in the same transaction, as SCIM deactivation does,
// so the gateway refuses the user's next request.
func applyUser(tx storage.Tx, ch *userChange, t *tally) error {
	counts := &t.counts
	now := time.Now().UTC()
	next := *ch.next
	next.Modified = now
	if ch.before == nil {
		next.Created = now
		if err := tx.PutUser(&next); err != nil {
			return err
		}
		counts.UsersCreated++
		return tx.AppendEvent(storage.Event{Type: storage.EventUserCreated, Actor: Actor, ResourceType: "User",
			ResourceID: next.ID, After: userSummary(&next)})
	}
	if err := tx.PutUser(&next); err != nil {
		return err
	}
	b, a := userDiff(ch.before, &next)
	ev := storage.Event{Type: storage.EventUserUpdated, Actor: Actor, ResourceType: "User",
		ResourceID: next.ID, Before: b, After: a, Reason: ch.reason}
	switch {
	case ch.before.Active && !next.Active:
		n, err := tx.DeleteSessionsOf(next.ID)
		if err != nil {
			return err
		}
		ev.Type = storage.EventUserDeactivated
		ev.Reason = joinReason(ch.reason, fmt.Sprintf("%d sessions ended", n))
		counts.UsersDeactivated++
		t.deprovisioned = append(t.deprovisioned, next.ID)
	case !ch.before.Active && next.Active:
		ev.Type = storage.EventUserReactivated
		counts.UsersReactivated++
	default:
		counts.UsersUpdated++
	}
	return tx.AppendEvent(ev)
}

func joinReason(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// deactivation plans turning off the listed users (by store id) that are
// still active Google users.
func planDeactivations(tx storage.ReadTx, ids []string, reason string) ([]*userChange, error) {
	var out []*userChange
	for _, id := range ids {
		u, err := tx.GetUser(id)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !u.Active || u.Source != storage.SourceGoogle {
			continue
		}
		next := *u
		next.Active = false
		out = append(out, &userChange{before: u, next: &next, reason: reason})
	}
	return out, nil
}

// groupChange is one group write: before nil creates.
type groupChange struct {
	before, next *storage.Group
}

func planGroup(tx storage.ReadTx, want *storage.Group) (*groupChange, error) {
	before, err := googleGroupByID(tx, want.ExternalID)
	if err != nil {
		return nil, err
	}
	next := *want
	if before == nil {
		next.ID = storage.NewID()
		return &groupChange{next: &next}, nil
	}
	next.ID, next.Created, next.Version = before.ID, before.Created, before.Version
	if sameGroup(before, &next) {
		return nil, nil
	}
	return &groupChange{before: before, next: &next}, nil
}

func applyGroup(tx storage.Tx, ch *groupChange, t *tally) error {
	counts := &t.counts
	now := time.Now().UTC()
	next := *ch.next
	next.Modified = now
	if ch.before == nil {
		next.Created = now
		if err := tx.PutGroup(&next); err != nil {
			return err
		}
		counts.GroupsCreated++
		return tx.AppendEvent(storage.Event{Type: storage.EventGroupCreated, Actor: Actor, ResourceType: "Group",
			ResourceID: next.ID, After: groupSummary(&next)})
	}
	if err := tx.PutGroup(&next); err != nil {
		return err
	}
	counts.GroupsUpdated++
	return tx.AppendEvent(storage.Event{Type: storage.EventGroupUpdated, Actor: Actor, ResourceType: "Group",
		ResourceID: next.ID, Before: groupSummary(ch.before), After: groupSummary(&next)})
}

// memberChange is the membership edit of one group: the store's group
// holds exactly want (user ids) once it is applied.
type memberChange struct {
	groupID         string
	adds, removes   []string
	removeGroupRefs []string // nested-group memberships: the store keeps groups flattened
}

// planMembers compares the group's stored members with want.
func planMembers(tx storage.ReadTx, groupID string, want map[string]bool) (*memberChange, error) {
	ch := &memberChange{groupID: groupID}
	present := make(map[string]bool, len(want))
	err := tx.Members(groupID, func(m storage.Member) (bool, error) {
		switch {
		case m.Type == storage.MemberGroup:
			ch.removeGroupRefs = append(ch.removeGroupRefs, m.ID)
		case want[m.ID]:
			present[m.ID] = true
		default:
			ch.removes = append(ch.removes, m.ID)
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	for id := range want {
		if !present[id] {
			ch.adds = append(ch.adds, id)
		}
	}
	if len(ch.adds)+len(ch.removes)+len(ch.removeGroupRefs) == 0 {
		return nil, nil
	}
	slices.Sort(ch.adds)
	return ch, nil
}

// applyMembers applies one group's membership edit with one audit event
// per membership, and bumps the group record as a SCIM change does.
func applyMembers(tx storage.Tx, ch *memberChange, t *tally) error {
	counts := &t.counts
	for _, id := range ch.adds {
		added, err := tx.AddMember(ch.groupID, storage.Member{ID: id, Type: storage.MemberUser})
		if err != nil {
			return err
		}
		if added {
			counts.MembershipsAdded++
			if err := tx.AppendEvent(storage.Event{Type: storage.EventMemberAdded, Actor: Actor,
				ResourceType: "Group", ResourceID: ch.groupID, After: memberSummary(id)}); err != nil {
				return err
			}
		}
	}
	for _, id := range append(slices.Clone(ch.removes), ch.removeGroupRefs...) {
		removed, err := tx.RemoveMember(ch.groupID, id)
		if err != nil {
			return err
		}
		if removed {
			counts.MembershipsRemoved++
			if err := tx.AppendEvent(storage.Event{Type: storage.EventMemberRemoved, Actor: Actor,
				ResourceType: "Group", ResourceID: ch.groupID, Before: "member=" + id}); err != nil {
				return err
			}
		}
	}
	g, err := tx.GetGroup(ch.groupID)
	if err != nil {
		return err
	}
	g.Modified = time.Now().UTC()
	return tx.PutGroup(g)
}

// googleGroupsOf lists the Google-sourced groups the user is a member of.
func googleGroupsOf(tx storage.ReadTx, userID string) ([]string, error) {
	ids, err := tx.GroupsOf(userID)
	if err != nil {
		return nil, err
	}
	out := ids[:0]
	for _, id := range ids {
		g, err := tx.GetGroup(id)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if g.Source == storage.SourceGoogle {
			out = append(out, id)
		}
	}
	return out, nil
}

// deleteGroup removes a Google group that is gone.
func deleteGroup(tx storage.Tx, g *storage.Group, reason string, t *tally) error {
	counts := &t.counts
	if err := tx.DeleteGroup(g.ID); err != nil {
		return err
	}
	counts.GroupsDeleted++
	return tx.AppendEvent(storage.Event{Type: storage.EventGroupDeleted, Actor: Actor, ResourceType: "Group",
		ResourceID: g.ID, Before: groupSummary(g), Reason: reason})
}
