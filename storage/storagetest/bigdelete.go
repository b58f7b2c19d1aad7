package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// bigGroupMembers is more memberships than one Badger transaction can
// remove (two keys each, ~52,000 writes per commit), so a backend that
// deletes them all in the deleting transaction fails this suite.
const bigGroupMembers = 30_000

// addMembers adds n user members m0..m(n-1) to gid, in transactions of a
// bounded size.
func addMembers(h *harness, gid string, n int) {
	h.t.Helper()
	const batch = 5000
	for start := 0; start < n; start += batch {
		h.update(tenant, func(tx storage.Tx) error {
			for i := start; i < min(start+batch, n); i++ {
				if _, err := tx.AddMember(gid, user(fmt.Sprintf("m%05d", i))); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// testDeleteLargeGroup: deleting a group of bigGroupMembers succeeds in one
// Update, and from its commit on (in the deleting transaction too) every
// read acts as if the group and all its memberships were gone: members
// lose what the group granted on their very next read. It stays so across
// a reopen, and other groups keep their members.
func testDeleteLargeGroup(t *testing.T, h *harness) {
	seedDirectory(h)
	addMembers(h, "g1", bigGroupMembers)
	h.update(tenant, func(tx storage.Tx) error {
		_, err1 := tx.AddMember("g2", user("m00007"))
		_, err2 := tx.AddMember("g3", group("g1")) // g1 nested in g3
		_, err3 := tx.AddMember("g3", user("m00007"))
		return errors.Join(err1, err2, err3)
	})
	gen := h.s.Generation(tenant)
	h.update(tenant, func(tx storage.Tx) error {
		if err := tx.DeleteGroup("g1"); err != nil {
			return err
		}
		return checkGroupGone(tx, "in the deleting transaction")
	})
	if h.s.Generation(tenant) <= gen {
		t.Errorf("Generation did not move at the delete of a large group")
	}
	check := func(when string) {
		t.Helper()
		h.view(tenant, func(tx storage.ReadTx) error {
			if err := checkGroupGone(tx, when); err != nil {
				t.Fatal(err)
			}
			return nil
		})
	}
	check("right after the delete")
	h.reopen()
	check("after reopening")

	// A new group (new id) is unaffected, and so are the members' other
	// groups.
	h.putGroup(tenant, &storage.Group{ID: "g4", DisplayName: "g1"})
	addMembers(h, "g4", 3)
	checkMembers(t, h, "new group", memberState{
		members:  map[string][]storage.Member{"g4": {user("m00000"), user("m00001"), user("m00002")}},
		groupsOf: map[string][]string{"m00001": {"g4"}, "m00007": {"g2", "g3"}},
	})
	h.view(tenant, func(tx storage.ReadTx) error {
		gs, err := tx.GroupsByDisplayName("g1")
		if err != nil || !slices.Equal(groupIDs(gs), []string{"g4"}) {
			t.Fatalf("GroupsByDisplayName(g1) after re-use of the name = %v, %v", groupIDs(gs), err)
		}
		return nil
	})
}

// checkGroupGone says what of group g1 (deleted, with members m*, nested
// in g3; m00007 also in g2 and g3) a reader still sees.
func checkGroupGone(tx storage.ReadTx, when string) error {
	if _, err := tx.GetGroup("g1"); !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%s: GetGroup = %v, want ErrNotFound", when, err)
	}
	if gs, err := tx.GroupsByDisplayName("g1"); err != nil || len(gs) != 0 {
		return fmt.Errorf("%s: GroupsByDisplayName = %v, %v", when, groupIDs(gs), err)
	}
	if n, err := tx.CountGroups(); err != nil || n != 2 {
		return fmt.Errorf("%s: CountGroups = %d, %v; want 2", when, n, err)
	}
	var scanned []string
	err := tx.ScanGroups("", func(g *storage.Group) (bool, error) {
		scanned = append(scanned, g.ID)
		return true, nil
	})
	if err != nil || !slices.Equal(scanned, []string{"g2", "g3"}) {
		return fmt.Errorf("%s: ScanGroups = %v, %v", when, scanned, err)
	}
	if n, err := tx.CountMembers("g1"); err != nil || n != 0 {
		return fmt.Errorf("%s: CountMembers = %d, %v", when, n, err)
	}
	seen := 0
	err = tx.Members("g1", func(storage.Member) (bool, error) { seen++; return true, nil })
	if err != nil || seen != 0 {
		return fmt.Errorf("%s: Members listed %d, %v", when, seen, err)
	}
	for _, m := range []string{"m00000", "m00007", fmt.Sprintf("m%05d", bigGroupMembers-1)} {
		if ok, err := tx.IsMember("g1", m); err != nil || ok {
			return fmt.Errorf("%s: IsMember(g1, %s) = %v, %v", when, m, ok, err)
		}
	}
	if gs, err := tx.GroupsOf("m00000"); err != nil || len(gs) != 0 {
		return fmt.Errorf("%s: GroupsOf(m00000) = %v, %v", when, gs, err)
	}
	if gs, err := tx.GroupsOf("m00007"); err != nil || !slices.Equal(gs, []string{"g2", "g3"}) {
		return fmt.Errorf("%s: GroupsOf(m00007) = %v, %v; want [g2 g3]", when, gs, err)
	}
	// As a member of g3, g1 is gone too.
	if gs, err := tx.GroupsOf("g1"); err != nil || len(gs) != 0 {
		return fmt.Errorf("%s: GroupsOf(g1) = %v, %v", when, gs, err)
	}
	if ok, err := tx.IsMember("g3", "g1"); err != nil || ok {
		return fmt.Errorf("%s: IsMember(g3, g1) = %v, %v", when, ok, err)
	}
	var g3 []storage.Member
	err = tx.Members("g3", func(m storage.Member) (bool, error) { g3 = append(g3, m); return true, nil })
	if err != nil || !slices.Equal(g3, []storage.Member{user("m00007")}) {
		return fmt.Errorf("%s: Members(g3) = %v, %v; want [m00007]", when, g3, err)
	}
	if n, err := tx.CountMembers("g3"); err != nil || n != 1 {
		return fmt.Errorf("%s: CountMembers(g3) = %d, %v; want 1", when, n, err)
	}
	return nil
}
