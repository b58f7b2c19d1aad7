package storagetest

import (
	"slices"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// testGroupsOfEach: GroupsOfEach agrees with GroupsOf and GetGroup for
// every member asked about, users and nested groups alike, hides a deleted
// group at once (as a group of a member, and as a member), leaves out members in no group and unknown ids, and takes
// repeated ids and an empty list.
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
			var gotIDs []string
			for _, g := range got[id] {
				gotIDs = append(gotIDs, g.ID)
				want, err := tx.GetGroup(g.ID)
				wantErr(t, "GetGroup", err, nil)
				if g.DisplayName != want.DisplayName || g.Version != want.Version {
					t.Errorf("GroupsOfEach gave %s group %+v, GetGroup %+v", id, g, want)
				}
			}
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
		return nil
	})
}
