package storagetest

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// testUserPage: UserPage gives what ScanUsers and GroupsOfEach give
// together, from every kind of starting point (the start, a user's id, a
// group's id between users' ids, an id no record has, past the end) and
// for every limit (none, one, part, more than there are), in a View and
// inside a transaction that has just changed users and memberships. The
// groups are interleaved with the users in id order and some are members
// of others, so a backend that reads memberships by id range has those of
// groups in its range; one group is deleted, and a membership names a user
// that does not exist. Some ids are not UUIDs (upper and lower case,
// punctuation, non-ASCII: byte order is the order), and another tenant has
// users of the same ids in groups of its own.
// otherTenant shares ids with tenant in testUserPage.
const otherTenant = "globex"

func testUserPage(t *testing.T, h *harness) {
	rng := rand.New(rand.NewPCG(7, 11))
	var users, groups []string
	odd := []string{"Zeta-7", "alpha.2", "ALPHA_2", "ünï-3", "a", "~tilde", "0"}
	for i := range 30 {
		id := storage.NewID()
		if i < len(odd) {
			id = odd[i]
		}
		users = append(users, id)
		h.putUser(tenant, &storage.User{ID: id, UserName: fmt.Sprintf("page-user-%02d", i), Active: i%2 == 0,
			DisplayName: fmt.Sprintf("Page User %d", i), ExternalID: fmt.Sprintf("ext-%d", i),
			Emails:     []string{fmt.Sprintf("page-%d@example.com", i)},
			Attributes: json.RawMessage(fmt.Sprintf(`{"title":"t%d","name":{"givenName":"G%d"}}`, i, i))})
	}
	// Another tenant: the same user ids, in groups of its own.
	h.update(otherTenant, func(tx storage.Tx) error {
		g := storage.NewID()
		if err := tx.PutGroup(&storage.Group{ID: g, DisplayName: "other tenant's"}); err != nil {
			return err
		}
		for _, u := range users {
			if err := tx.PutUser(&storage.User{ID: u, UserName: "other-" + u}); err != nil {
				return err
			}
			if _, err := tx.AddMember(g, user(u)); err != nil {
				return err
			}
		}
		return nil
	})
	for i := range 8 {
		id := storage.NewID()
		groups = append(groups, id)
		h.putGroup(tenant, &storage.Group{ID: id, DisplayName: fmt.Sprintf("page-group-%d", i)})
	}
	h.update(tenant, func(tx storage.Tx) error {
		for i, u := range users {
			for range i % 4 { // 0 to 3 groups (repeats are one membership)
				if _, err := tx.AddMember(groups[rng.IntN(len(groups))], user(u)); err != nil {
					return err
				}
			}
		}
		for _, g := range groups[1:4] {
			if _, err := tx.AddMember(groups[0], storage.Member{ID: g, Type: storage.MemberGroup}); err != nil {
				return err
			}
		}
		_, err := tx.AddMember(groups[2], user(storage.NewID())) // a user not (yet) created
		return err
	})
	h.update(tenant, func(tx storage.Tx) error { return tx.DeleteGroup(groups[5]) })

	sorted := slices.Sorted(slices.Values(users))
	afters := []string{"", sorted[0], sorted[13], sorted[len(sorted)-2], sorted[len(sorted)-1],
		groups[1], groups[6], sorted[7] + "0", "\U0010FFFF"}
	check := func(tx storage.ReadTx, when string) {
		for _, after := range afters {
			for _, limit := range []int{0, 1, 5, 29, 100} {
				got, gotGroups, err := tx.UserPage(after, limit)
				wantErr(t, "UserPage", err, nil)
				var want []*storage.User
				if limit > 0 {
					err = tx.ScanUsers(after, func(u *storage.User) (bool, error) {
						want = append(want, u)
						return len(want) < limit, nil
					})
					wantErr(t, "ScanUsers", err, nil)
				}
				ids := make([]string, len(want))
				for i, u := range want {
					ids[i] = u.ID
				}
				wantGroups, err := tx.GroupsOfEach(ids)
				wantErr(t, "GroupsOfEach", err, nil)
				name := fmt.Sprintf("%s: UserPage(%.8q, %d)", when, after, limit)
				if len(got) != len(want) {
					t.Errorf("%s gave %d users, ScanUsers %d", name, len(got), len(want))
					continue
				}
				for i := range want {
					if !reflect.DeepEqual(got[i], want[i]) {
						t.Errorf("%s: user %d is\n%+v\nScanUsers gave\n%+v", name, i, got[i], want[i])
					}
				}
				if gotGroups == nil {
					t.Errorf("%s: nil groups map", name)
				}
				if !maps.EqualFunc(gotGroups, wantGroups, slices.Equal) {
					t.Errorf("%s: groups\n got %v\nwant %v", name, gotGroups, wantGroups)
				}
			}
		}
	}
	h.view(tenant, func(tx storage.ReadTx) error {
		check(tx, "view")
		return nil
	})
	h.update(tenant, func(tx storage.Tx) error {
		if err := tx.DeleteUser(sorted[1]); err != nil {
			return err
		}
		if _, err := tx.RemoveMember(groups[0], sorted[2]); err != nil {
			return err
		}
		if _, err := tx.AddMember(groups[7], user(sorted[3])); err != nil {
			return err
		}
		if err := tx.PutUser(&storage.User{ID: sorted[13] + "1", UserName: "page-user-new"}); err != nil {
			return err
		}
		check(tx, "own writes")
		return nil
	})
}
