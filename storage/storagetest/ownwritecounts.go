package storagetest

import (
	"fmt"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// testCountsReadOwnWrites: a transaction's counts and positions see its
// own writes at every step, however often it changes the same count (a
// backend may hold count changes back and write each once, as the Badger
// store does to keep a large SCIM change within one transaction), and
// the committed counts are the last ones it saw.
func testCountsReadOwnWrites(t *testing.T, h *harness) {
	h.update(tenant, func(tx storage.Tx) error {
		return tx.PutGroup(&storage.Group{ID: "g1", DisplayName: "g1"})
	})
	check := func(tx storage.ReadTx, step string, users, members int) error {
		if n, err := tx.CountUsers(); err != nil || n != users {
			return fmt.Errorf("%s: CountUsers = %d, %v; want %d", step, n, err, users)
		}
		if n, err := tx.CountMembers("g1"); err != nil || n != members {
			return fmt.Errorf("%s: CountMembers = %d, %v; want %d", step, n, err, members)
		}
		if users > 0 {
			if id, err := tx.UserIDAt(users - 1); err != nil || id != fmt.Sprintf("u%03d", users-1) {
				return fmt.Errorf("%s: UserIDAt(%d) = %q, %v", step, users-1, id, err)
			}
		}
		if _, err := tx.UserIDAt(users); err == nil {
			return fmt.Errorf("%s: UserIDAt(%d) found a user past the count", step, users)
		}
		return nil
	}
	h.update(tenant, func(tx storage.Tx) error {
		for i := range 50 {
			id := fmt.Sprintf("u%03d", i)
			if err := tx.PutUser(&storage.User{ID: id, UserName: "user-" + id}); err != nil {
				return err
			}
			if _, err := tx.AddMember("g1", user(id)); err != nil {
				return err
			}
			if err := check(tx, fmt.Sprintf("after user %d", i), i+1, i+1); err != nil {
				t.Error(err)
				return err
			}
		}
		for i := 49; i >= 40; i-- {
			if err := tx.DeleteUser(fmt.Sprintf("u%03d", i)); err != nil {
				return err
			}
		}
		if _, err := tx.RemoveMember("g1", "u000"); err != nil {
			return err
		}
		if err := check(tx, "after the deletes", 40, 39); err != nil {
			t.Error(err)
			return err
		}
		return nil
	})
	h.view(tenant, func(tx storage.ReadTx) error {
		if err := check(tx, "committed", 40, 39); err != nil {
			t.Error(err)
		}
		return nil
	})
}
