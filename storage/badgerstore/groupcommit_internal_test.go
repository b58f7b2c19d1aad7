package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// TestGroupCommit: concurrent Updates share transactions, and each still
// gets its own outcome: a fn that fails (its own error after writing, a
// refused write, a panic) leaves nothing behind and fails alone, in its
// caller's goroutine; every other change commits, with its event, and
// moves Generation.
func TestGroupCommit(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const writers, rounds = 16, 8
	errOwn := errors.New("the fn's own error")
	if err := s.Update(ctx, "acme", func(tx storage.Tx) error {
		return tx.PutUser(&storage.User{ID: "taken", UserName: "taken@example.com"})
	}); err != nil {
		t.Fatal(err)
	}
	before := s.Generation("acme")
	var wg sync.WaitGroup
	outcomes := make([][]string, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				id := fmt.Sprintf("u-%02d-%d", w, i)
				tenant := "acme"
				if w%5 == 4 {
					tenant = "other" // groups may mix tenants
				}
				var outcome string
				func() {
					defer func() {
						if p := recover(); p != nil {
							outcome = fmt.Sprint("panic: ", p)
						}
					}()
					err := s.Update(ctx, tenant, func(tx storage.Tx) error {
						if err := tx.PutUser(&storage.User{ID: id, UserName: id + "@example.com"}); err != nil {
							return err
						}
						if err := tx.AppendEvent(storage.Event{Type: storage.EventUserCreated, ResourceID: id}); err != nil {
							return err
						}
						switch w % 5 {
						case 1:
							return errOwn
						case 2:
							return tx.PutUser(&storage.User{ID: id + "-dup", UserName: "TAKEN@example.com"})
						case 3:
							if i == 0 {
								panic("boom " + id)
							}
						}
						return nil
					})
					if outcome == "" {
						outcome = fmt.Sprint(err)
					}
				}()
				outcomes[w] = append(outcomes[w], outcome)
			}
		})
	}
	wg.Wait()
	committed := map[string]int{}
	for w, os := range outcomes {
		for i, o := range os {
			id := fmt.Sprintf("u-%02d-%d", w, i)
			tenant := "acme"
			if w%5 == 4 {
				tenant = "other"
			}
			want := "<nil>"
			switch {
			case w%5 == 1:
				want = errOwn.Error()
			case w%5 == 2:
				want = storage.ErrUniqueness.Error()
			case w%5 == 3 && i == 0:
				want = "panic: boom " + id
			}
			if o != want {
				t.Errorf("%s: outcome %q, want %q", id, o, want)
			}
			if want == "<nil>" {
				committed[tenant]++
			}
			err := s.View(ctx, tenant, func(tx storage.ReadTx) error {
				_, err := tx.GetUser(id)
				return err
			})
			if stored := err == nil; stored != (want == "<nil>") {
				t.Errorf("%s: stored %v (%v), outcome %q", id, stored, err, o)
			}
		}
	}
	for tenant, n := range committed {
		extra := 0
		if tenant == "acme" {
			extra = 1 // "taken"
		}
		s.View(ctx, tenant, func(tx storage.ReadTx) error {
			if c, err := tx.CountUsers(); err != nil || c != n+extra {
				t.Errorf("%s: CountUsers = %d, %v; want %d", tenant, c, err, n+extra)
			}
			if es, err := tx.Events(storage.EventQuery{Limit: 1000}); err != nil || len(es) != n {
				t.Errorf("%s: Events = %d, %v; want %d (only the committed fns')", tenant, len(es), err, n)
			}
			return nil
		})
	}
	if after := s.Generation("acme"); after <= before {
		t.Errorf("Generation %d after the writes, %d before", after, before)
	}
	t.Logf("%d fns committed in groups; %d conflicts", s.grouped.Load(), s.conflicts.Load())
	if s.grouped.Load() == 0 {
		t.Errorf("no fn shared a transaction")
	}
}

// TestGroupCommitNestedUpdate: an fn that waits for another Update (which
// queues behind it) is delayed, not deadlocked.
func TestGroupCommitNestedUpdate(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	start := time.Now()
	err = s.Update(ctx, "acme", func(tx storage.Tx) error {
		if err := tx.PutUser(&storage.User{ID: "outer", UserName: "outer@example.com"}); err != nil {
			return err
		}
		return s.Update(ctx, "acme", func(tx storage.Tx) error {
			return tx.PutUser(&storage.User{ID: "inner", UserName: "inner@example.com"})
		})
	})
	if err != nil {
		t.Fatalf("nested Update: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("nested Update took %v", d)
	}
}
