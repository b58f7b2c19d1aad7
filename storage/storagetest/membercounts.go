package storagetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// testMemberCounts: CountMembers stays exact through every write that
// adds or removes memberships (the operator's groups page and SCIM read
// it for every group, so a backend may keep counts rather than walk the
// members, and then must keep them right): adds, repeated adds, removes,
// removes of non-members, a user's delete, a nested group's delete (before
// and after reopening), a deleted id created again, writes and reads in
// one transaction, an aborted transaction, and concurrent adds.
func testMemberCounts(t *testing.T, h *harness) {
	long := "g-" + strings.Repeat("x", 300) // past any inline key component
	h.update(tenant, func(tx storage.Tx) error {
		for i := range 6 {
			if err := tx.PutUser(&storage.User{ID: fmt.Sprintf("u%d", i), UserName: fmt.Sprintf("user%d", i)}); err != nil {
				return err
			}
		}
		for _, g := range []string{"g1", "g2", "g3", long} {
			if err := tx.PutGroup(&storage.Group{ID: g, DisplayName: g[:2]}); err != nil {
				return err
			}
		}
		return nil
	})
	counts := func(step string, want map[string]int) {
		t.Helper()
		h.view(tenant, func(tx storage.ReadTx) error {
			for gid, n := range want {
				got, err := tx.CountMembers(gid)
				if err != nil || got != n {
					t.Fatalf("%s: CountMembers(%.8s) = %d, %v; want %d", step, gid, got, err, n)
				}
			}
			return nil
		})
	}
	add := func(tx storage.Tx, gid string, ms ...storage.Member) error {
		for _, m := range ms {
			if _, err := tx.AddMember(gid, m); err != nil {
				return err
			}
		}
		return nil
	}
	steps := []struct {
		name   string
		change func(tx storage.Tx) error
		want   map[string]int
	}{
		{"adds", func(tx storage.Tx) error {
			if err := add(tx, "g1", user("u0"), user("u1"), user("u2"), group("g2")); err != nil {
				return err
			}
			if err := add(tx, "g2", user("u1"), user("u3")); err != nil {
				return err
			}
			return add(tx, long, user("u0"), user("u4"), group("g2"))
		}, map[string]int{"g1": 4, "g2": 2, "g3": 0, long: 3}},
		{"repeated adds", func(tx storage.Tx) error {
			return add(tx, "g1", user("u0"), group("g2"))
		}, map[string]int{"g1": 4, "g2": 2}},
		{"removes, and removes of non-members", func(tx storage.Tx) error {
			for _, r := range [][2]string{{"g1", "u2"}, {"g1", "u5"}, {"g3", "u0"}, {long, "u4"}, {"nope", "u0"}} {
				if _, err := tx.RemoveMember(r[0], r[1]); err != nil {
					return err
				}
			}
			return nil
		}, map[string]int{"g1": 3, "g3": 0, long: 2, "nope": 0}},
		{"add again after a remove", func(tx storage.Tx) error {
			return add(tx, "g1", user("u2"))
		}, map[string]int{"g1": 4}},
		{"counted inside the writing transaction", func(tx storage.Tx) error {
			if err := add(tx, "g3", user("u0"), user("u1")); err != nil {
				return err
			}
			if n, err := tx.CountMembers("g3"); err != nil || n != 2 {
				return fmt.Errorf("CountMembers(g3) in the transaction = %d, %v; want 2", n, err)
			}
			if _, err := tx.RemoveMember("g3", "u1"); err != nil {
				return err
			}
			if n, err := tx.CountMembers("g3"); err != nil || n != 1 {
				return fmt.Errorf("CountMembers(g3) after the remove = %d, %v; want 1", n, err)
			}
			return nil
		}, map[string]int{"g3": 1}},
		{"user delete", func(tx storage.Tx) error {
			return tx.DeleteUser("u0") // in g1, g3 and long
		}, map[string]int{"g1": 3, "g2": 2, "g3": 0, long: 1}},
		{"nested group delete", func(tx storage.Tx) error {
			if err := tx.DeleteGroup("g2"); err != nil {
				return err
			}
			if n, err := tx.CountMembers("g1"); err != nil || n != 2 {
				return fmt.Errorf("CountMembers(g1) in the deleting transaction = %d, %v; want 2", n, err)
			}
			return nil
		}, map[string]int{"g1": 2, "g2": 0, long: 0}},
		{"deleted id created again", func(tx storage.Tx) error {
			if err := tx.PutGroup(&storage.Group{ID: "g2", DisplayName: "again"}); err != nil {
				return err
			}
			return add(tx, "g2", user("u5"))
		}, map[string]int{"g1": 2, "g2": 1, long: 0}},
		{"nested again", func(tx storage.Tx) error {
			return add(tx, "g1", group("g2"))
		}, map[string]int{"g1": 3, "g2": 1}},
	}
	for _, st := range steps {
		h.update(tenant, st.change)
		counts(st.name, st.want)
	}
	final := map[string]int{"g1": 3, "g2": 1, "g3": 0, long: 0}
	h.reopen()
	counts("after reopening", final)

	// An aborted transaction changes no count.
	errAbort := errors.New("abort")
	err := h.s.Update(context.Background(), tenant, func(tx storage.Tx) error {
		if err := add(tx, "g3", user("u1"), user("u3")); err != nil {
			return err
		}
		if _, err := tx.RemoveMember("g1", "u1"); err != nil {
			return err
		}
		if err := tx.DeleteUser("u2"); err != nil {
			return err
		}
		return errAbort
	})
	wantErr(t, "aborted update", err, errAbort)
	counts("after an aborted update", final)

	// Concurrent adds of different members to one group, with no other
	// write in common (sign-ins joining one group), all count.
	const joiners = 20
	var wg sync.WaitGroup
	errs := make([]error, joiners)
	for i := range joiners {
		wg.Go(func() {
			errs[i] = h.s.Update(context.Background(), tenant, func(tx storage.Tx) error {
				return add(tx, "g3", user(fmt.Sprintf("j%02d", i)))
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("joiner %d: %v", i, err)
		}
	}
	counts("after concurrent adds", map[string]int{"g3": joiners, "g1": 3})
}
