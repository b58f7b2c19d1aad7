package storagetest

import (
	"slices"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// testGroupsOfEach: GroupsOfEach agrees with GroupsOf for
// every member asked about, users and nested groups alike, hides a deleted
// group at once (as a group of a member, and as a member), leaves out members in no group and unknown ids, and takes
// repeated ids and an empty list; GetGroups agrees with GetGroup.
func testGroupsOfEach(t *testing.T, h *harness) {
	var gs []*storage.Group
	for _, name := range []string{"Engineering", "Staff", "Wiki", "Doomed"} {
		g := &storage.Group{ID: storage.NewID(), DisplayName: name}
		h.putGroup(tenant, g)
		gs = append(gs, g)
	}
	alice := &storage.User{ID: storage.NewID(), UserName: "alice"}
	bob := &storage.User{ID: storage.NewID(), UserName: "bob"}
	carol := &storage.User{ID: storage.NewID(), UserName: "carol"} // in no group
	for _, u := range []*storage.User{alice, bob, carol} {
		h.putUser(tenant, u)
	}
	h.update(tenant, func(tx storage.Tx) error {
		for _, m := range []struct {
			g *storage.Group
			m storage.Member
		}{
			{gs[0], storage.Member{ID: alice.ID, Type: storage.MemberUser}},
			{gs[1], storage.Member{ID: alice.ID, Type: storage.MemberUser}},
			{gs[3], storage.Member{ID: alice.ID, Type: storage.MemberUser}},
			{gs[1], storage.Member{ID: bob.ID, Type: storage.MemberUser}},
			{gs[1], storage.Member{ID: gs[2].ID, Type: storage.MemberGroup}},
			{gs[1], storage.Member{ID: gs[3].ID, Type: storage.MemberGroup}},
		} {
			if _, err := tx.AddMember(m.g.ID, m.m); err != nil {
				return err
			}
		}
		return nil
	})
	h.update(tenant, func(tx storage.Tx) error { return tx.DeleteGroup(gs[3].ID) })

	ask := []string{alice.ID, bob.ID, carol.ID, gs[2].ID, alice.ID, "no-such-member", gs[3].ID}
	h.view(tenant, func(tx storage.ReadTx) error {
		got, err := tx.GroupsOfEach(ask)
		wantErr(t, "GroupsOfEach", err, nil)
		for _, id := range ask {
			wantIDs, err := tx.GroupsOf(id)
			wantErr(t, "GroupsOf", err, nil)
			gotIDs := got[id]
			if !slices.Equal(gotIDs, wantIDs) {
				t.Errorf("GroupsOfEach[%s] = %v, GroupsOf = %v", id, gotIDs, wantIDs)
			}
			if _, in := got[id]; in != (len(wantIDs) > 0) {
				t.Errorf("GroupsOfEach has %s: %v, want %v", id, in, len(wantIDs) > 0)
			}
		}
		if len(got) != 3 {
			t.Errorf("GroupsOfEach answered for %d members, want 3 (alice, bob, the nested group)", len(got))
		}
		empty, err := tx.GroupsOfEach(nil)
		wantErr(t, "GroupsOfEach(nil)", err, nil)
		if len(empty) != 0 {
			t.Errorf("GroupsOfEach(nil) = %v", empty)
		}

		// GetGroups: the records GetGroup gives, the deleted and the
		// unknown absent, repeats and an empty list taken.
		ids := []string{gs[0].ID, gs[3].ID, gs[1].ID, gs[0].ID, "no-such-group", alice.ID}
		recs, err := tx.GetGroups(ids)
		wantErr(t, "GetGroups", err, nil)
		if len(recs) != 2 {
			t.Errorf("GetGroups gave %d groups, want 2: %v", len(recs), recs)
		}
		for _, g := range gs[:2] {
			want, err := tx.GetGroup(g.ID)
			wantErr(t, "GetGroup", err, nil)
			if got := recs[g.ID]; got == nil || got.ID != want.ID || got.DisplayName != want.DisplayName || got.Version != want.Version {
				t.Errorf("GetGroups[%s] = %+v, GetGroup %+v", g.ID, got, want)
			}
		}
		none, err := tx.GetGroups(nil)
		wantErr(t, "GetGroups(nil)", err, nil)
		if len(none) != 0 {
			t.Errorf("GetGroups(nil) = %v", none)
		}
		return nil
	})
}
