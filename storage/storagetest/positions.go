package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// testIDAt checks UserIDAt and GroupIDAt: the id at a position of the id
// order, the same as ScanUsers/ScanGroups give, for ids of every shape
// (generated UUIDs, and short ones that are prefixes of others), after
// deletes, inside a transaction that has just created a record, and after
// a reopen. SCIM paging (startIndex) jumps to a position with it.
func testIDAt(t *testing.T, h *harness) {
	ids := []string{"0", "00", "a", "ab", "abc", "abd", "b", "z", "zz"}
	for range 150 {
		ids = append(ids, storage.NewID())
	}
	h.update(tenant, func(tx storage.Tx) error {
		for _, id := range ids {
			if err := tx.PutUser(&storage.User{ID: id, UserName: "name-" + id}); err != nil {
				return err
			}
			if err := tx.PutGroup(&storage.Group{ID: id, DisplayName: "group-" + id}); err != nil {
				return err
			}
		}
		return nil
	})
	sorted := slices.Sorted(slices.Values(ids))

	check := func(what string, tx storage.ReadTx, want []string) {
		t.Helper()
		for _, kind := range []struct {
			name string
			at   func(int) (string, error)
		}{{"UserIDAt", tx.UserIDAt}, {"GroupIDAt", tx.GroupIDAt}} {
			for i, w := range want {
				got, err := kind.at(i)
				if err != nil || got != w {
					t.Fatalf("%s: %s(%d) = %q, %v; want %q", what, kind.name, i, got, err, w)
				}
			}
			for _, past := range []int{len(want), len(want) + 1, 1 << 30, -1} {
				if got, err := kind.at(past); !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("%s: %s(%d) = %q, %v; want ErrNotFound", what, kind.name, past, got, err)
				}
			}
		}
	}
	h.view(tenant, func(tx storage.ReadTx) error {
		check("after create", tx, sorted)
		return nil
	})

	// Delete some (the first, a short prefix of others, one in the middle).
	gone := []string{sorted[0], "ab", sorted[len(sorted)/2]}
	h.update(tenant, func(tx storage.Tx) error {
		for _, id := range gone {
			if err := tx.DeleteUser(id); err != nil {
				return err
			}
			if err := tx.DeleteGroup(id); err != nil {
				return err
			}
		}
		return nil
	})
	left := slices.DeleteFunc(slices.Clone(sorted), func(id string) bool { return slices.Contains(gone, id) })
	h.view(tenant, func(tx storage.ReadTx) error {
		check("after delete", tx, left)
		return nil
	})

	// A transaction sees its own creates.
	h.update(tenant, func(tx storage.Tx) error {
		for _, id := range []string{"aa", "abcd"} {
			if err := tx.PutUser(&storage.User{ID: id, UserName: "name-" + id}); err != nil {
				return err
			}
			if err := tx.PutGroup(&storage.Group{ID: id, DisplayName: "group-" + id}); err != nil {
				return err
			}
		}
		left = slices.Sorted(slices.Values(append(left, "aa", "abcd")))
		check("in the creating transaction", tx, left)
		return nil
	})
	// Another tenant's records take no position.
	h.update("other-"+tenant, func(tx storage.Tx) error {
		for i := range 5 {
			id := fmt.Sprintf("a%d", i)
			if err := tx.PutUser(&storage.User{ID: id, UserName: "name-" + id}); err != nil {
				return err
			}
		}
		return nil
	})
	h.reopen()
	h.view(tenant, func(tx storage.ReadTx) error {
		check("after reopen", tx, left)
		return nil
	})
}
