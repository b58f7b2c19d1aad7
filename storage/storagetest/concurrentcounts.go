package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// testConcurrentCounts: creates and deletes of users and groups from many
// writers at once, each with its audit event (as SCIM writes do), leave
// CountUsers, CountGroups and the events exact. A backend may spread its
// counters and pick them however it likes (Badger hands each transaction
// a shard no other holds), but the sums must hold.
func testConcurrentCounts(t *testing.T, h *harness) {
	const writers, each = 16, 12
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%02d-%02d", w, i)
				err := h.s.Update(context.Background(), tenant, func(tx storage.Tx) error {
					if err := tx.PutUser(&storage.User{ID: "u-" + id, UserName: id + "@example.com"}); err != nil {
						return err
					}
					if i%3 == 0 {
						if err := tx.PutGroup(&storage.Group{ID: "g-" + id, DisplayName: "G " + id}); err != nil {
							return err
						}
					}
					return tx.AppendEvent(storage.Event{Type: storage.EventUserCreated, ResourceType: "User", ResourceID: "u-" + id})
				})
				if err != nil {
					errs <- fmt.Errorf("create %s: %w", id, err)
					return
				}
				if i%4 != 3 {
					continue
				}
				// Every fourth user is deleted again, by its own writer,
				// while the others keep creating.
				err = h.s.Update(context.Background(), tenant, func(tx storage.Tx) error {
					return tx.DeleteUser("u-" + id)
				})
				if err != nil {
					errs <- fmt.Errorf("delete %s: %w", id, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wantUsers, wantGroups := writers*each*3/4, writers*((each+2)/3)
	h.view(tenant, func(tx storage.ReadTx) error {
		if n, err := tx.CountUsers(); err != nil || n != wantUsers {
			t.Errorf("CountUsers = %d, %v; want %d", n, err, wantUsers)
		}
		if n, err := tx.CountGroups(); err != nil || n != wantGroups {
			t.Errorf("CountGroups = %d, %v; want %d", n, err, wantGroups)
		}
		scanned := 0
		if err := tx.ScanUsers("", func(*storage.User) (bool, error) { scanned++; return true, nil }); err != nil || scanned != wantUsers {
			t.Errorf("ScanUsers saw %d users, %v; want %d", scanned, err, wantUsers)
		}
		if es, err := tx.Events(storage.EventQuery{Limit: 1000}); err != nil || len(es) != writers*each {
			t.Errorf("Events = %d, %v; want %d", len(es), err, writers*each)
		}
		return nil
	})
}

// testEventsReadOwnAppends: a transaction's reads of the audit log see
// the events it appended itself, before it commits (a backend may hold
// them back to write them with the commit), and an aborted one leaves
// none behind.
func testEventsReadOwnAppends(t *testing.T, h *harness) {
	h.update(tenant, func(tx storage.Tx) error {
		for _, id := range []string{"e1", "e2"} {
			if err := tx.AppendEvent(storage.Event{Type: storage.EventUserUpdated, ResourceID: id}); err != nil {
				return err
			}
		}
		es, err := tx.Events(storage.EventQuery{})
		if err != nil || len(es) != 2 {
			t.Errorf("inside the transaction: Events = %v, %v; want e1 and e2", eventResources(es), err)
		}
		// One more after the read: it must be kept too.
		return tx.AppendEvent(storage.Event{Type: storage.EventUserUpdated, ResourceID: "e3"})
	})
	errAbort := errors.New("abort")
	err := h.s.Update(context.Background(), tenant, func(tx storage.Tx) error {
		if err := tx.AppendEvent(storage.Event{Type: storage.EventUserUpdated, ResourceID: "aborted"}); err != nil {
			return err
		}
		return errAbort
	})
	if err != errAbort {
		t.Fatalf("aborted Update: %v, want errAbort", err)
	}
	got := eventResources(eventsOf(t, h, tenant, storage.EventQuery{}))
	if len(got) != 3 || got[0] == "aborted" || got[1] == "aborted" || got[2] == "aborted" {
		t.Fatalf("events after commit %v, want e1, e2, e3", got)
	}
}
