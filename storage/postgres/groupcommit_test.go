package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// TestGroupCommit: concurrent Updates of one tenant share transactions,
// and each still gets its own outcome: a fn that fails (its own error
// after writing, a refused write, a panic) leaves nothing behind and
// fails alone; every other change commits, with its event, and moves
// Generation.
func TestGroupCommit(t *testing.T) {
	s := openStore(t, newDatabase(t), Options{PoolSize: 20})
	ctx := context.Background()
	const writers, rounds = 16, 6
	errOwn := errors.New("the fn's own error")
	// A user whose userName the failing writers take.
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
				var outcome string
				func() {
					defer func() {
						if p := recover(); p != nil {
							outcome = fmt.Sprint("panic: ", p)
						}
					}()
					err := s.Update(ctx, "acme", func(tx storage.Tx) error {
						if err := tx.PutUser(&storage.User{ID: id, UserName: id + "@example.com"}); err != nil {
							return err
						}
						if err := tx.AppendEvent(storage.Event{Type: storage.EventUserCreated, ResourceID: id}); err != nil {
							return err
						}
						switch w % 4 {
						case 1: // fails after writing
							return errOwn
						case 2: // a write the store refuses
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
	committed := 0
	for w, os := range outcomes {
		for i, o := range os {
			id := fmt.Sprintf("u-%02d-%d", w, i)
			want := "<nil>"
			switch {
			case w%4 == 1:
				want = errOwn.Error()
			case w%4 == 2:
				want = storage.ErrUniqueness.Error()
			case w%4 == 3 && i == 0:
				want = "panic: boom " + id
			}
			if o != want {
				t.Errorf("%s: outcome %q, want %q", id, o, want)
			}
			if want == "<nil>" {
				committed++
			}
			err := s.View(ctx, "acme", func(tx storage.ReadTx) error {
				_, err := tx.GetUser(id)
				return err
			})
			if stored := err == nil; stored != (want == "<nil>") {
				t.Errorf("%s: stored %v (%v), outcome %q", id, stored, err, o)
			}
		}
	}
	s.View(ctx, "acme", func(tx storage.ReadTx) error {
		if n, err := tx.CountUsers(); err != nil || n != committed+1 {
			t.Errorf("CountUsers = %d, %v; want %d", n, err, committed+1)
		}
		if es, err := tx.Events(storage.EventQuery{Limit: 1000}); err != nil || len(es) != committed {
			t.Errorf("Events = %d, %v; want %d (only the committed fns')", len(es), err, committed)
		}
		return nil
	})
	if after := s.Generation("acme"); after <= before {
		t.Errorf("Generation %d after the writes, %d before", after, before)
	}
	t.Logf("%d of %d committed fns shared a transaction; %d retries", s.grouped.Load(), committed, s.retries.Load())
	if s.grouped.Load() == 0 {
		t.Errorf("no fn shared a transaction")
	}
}

// TestGroupCommitNestedUpdate: an fn that waits for another Update of its
// own tenant (which would queue behind it forever) is delayed, not
// deadlocked: the inner Update runs alone after maxGroupWait.
func TestGroupCommitNestedUpdate(t *testing.T) {
	s := openStore(t, newDatabase(t), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := s.Update(ctx, "acme", func(tx storage.Tx) error {
		if err := tx.PutUser(&storage.User{ID: "outer", UserName: "outer@example.com"}); err != nil {
			return err
		}
		// A record bumps no version, so the two transactions do not
		// conflict (nested writes that both bump one would, group
		// commit or not).
		return s.Update(ctx, "acme", func(tx storage.Tx) error {
			return tx.PutRecord("kind", "inner", []byte("v"), 0)
		})
	})
	if err != nil {
		t.Fatalf("nested Update: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("nested Update took %v", d)
	}
}
