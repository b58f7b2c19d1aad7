package badgerstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/portcullis/portcullis/storage"
)

const sweepTenant = "acme"

// fillGroup creates group gid with n user members, in bounded transactions.
func fillGroup(t *testing.T, s *Store, gid string, n int) {
	t.Helper()
	err := s.Update(context.Background(), sweepTenant, func(tx storage.Tx) error {
		return tx.PutGroup(&storage.Group{ID: gid, DisplayName: gid})
	})
	if err != nil {
		t.Fatal(err)
	}
	const batch = 5_000 // within the default memtable's transaction bound
	for start := 0; start < n; start += batch {
		err := s.Update(context.Background(), sweepTenant, func(tx storage.Tx) error {
			for i := start; i < min(start+batch, n); i++ {
				if _, err := tx.AddMember(gid, storage.Member{ID: fmt.Sprintf("u%06d", i), Type: storage.MemberUser}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// membershipKeys counts the raw membership keys of gid in both directions
// and whether its tombstone is there, whatever readers are shown.
func membershipKeys(t *testing.T, s *Store, gid string) (members, memberOf int, tombstone bool) {
	t.Helper()
	k := keyer{tenantPrefix(sweepTenant)}
	err := s.db.View(func(txn *badger.Txn) error {
		raw := &tx{txn: txn, k: k}
		var err error
		if members, err = raw.count(k.comp(kindMember, gid)); err != nil {
			return err
		}
		err = raw.iterate(k.kind(kindMemberOf), "", func(suffix []byte, _ *badger.Item) (bool, error) {
			if len(suffix) > len(gid) && string(suffix[len(suffix)-len(gid):]) == gid {
				memberOf++
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		tombstone, err = raw.exists(k.tombstone(gid))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return members, memberOf, tombstone
}

// waitSwept waits (bounded) until the sweeper has removed every
// membership key and the tombstone of gid.
func waitSwept(t *testing.T, s *Store, gid string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		m, o, tomb := membershipKeys(t, s, gid)
		if m == 0 && o == 0 && !tomb {
			// Its member counters went down with its keys, to none.
			checkCountersMatchKeys(t, s.db, sweepTenant, "after the sweep of "+gid)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sweep of %s unfinished: %d member keys, %d member-of keys, tombstone %v", gid, m, o, tomb)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countMembers(t *testing.T, s *Store, gid string) int {
	t.Helper()
	var n int
	err := s.View(context.Background(), sweepTenant, func(tx storage.ReadTx) error {
		var err error
		n, err = tx.CountMembers(gid)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDeleteGroupOf100000Members: one small transaction deletes a group of
// 100,000 members (far past what one Badger commit takes); readers see no
// member at once, and the sweeper then removes every membership key.
func TestDeleteGroupOf100000Members(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a group of 100,000 members")
	}
	const n = 100_000
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fillGroup(t, s, "big", n)
	if got := countMembers(t, s, "big"); got != n {
		t.Fatalf("CountMembers = %d, want %d", got, n)
	}
	err = s.Update(context.Background(), sweepTenant, func(tx storage.Tx) error { return tx.DeleteGroup("big") })
	if err != nil {
		t.Fatalf("DeleteGroup of %d members: %v", n, err)
	}
	if got := countMembers(t, s, "big"); got != 0 {
		t.Fatalf("CountMembers right after the delete = %d, want 0", got)
	}
	waitSwept(t, s, "big")
}

// TestSweepResumesAfterCrash: the store stops after one sweep batch of a
// deleted group (as a crash would leave it); reopened, it shows the group
// as gone at once and finishes the sweep by itself.
func TestSweepResumesAfterCrash(t *testing.T) {
	const n = 3*sweepBatch + 17
	dir := t.TempDir()
	s, err := open(dir, nil, Options{}, false) // no sweeper: it must not finish
	if err != nil {
		t.Fatal(err)
	}
	fillGroup(t, s, "doomed", n)
	fillGroup(t, s, "kept", 5)
	if err := s.Update(context.Background(), sweepTenant, func(tx storage.Tx) error { return tx.DeleteGroup("doomed") }); err != nil {
		t.Fatal(err)
	}
	var done bool
	_, err = s.run(context.Background(), tenantPrefix(sweepTenant), func(t *tx) error {
		var err error
		done, err = t.sweepStep("doomed", sweepBatch)
		return err
	})
	if err != nil || done {
		t.Fatalf("first sweep batch: done %v, %v; want a partial sweep", done, err)
	}
	if m, _, tomb := membershipKeys(t, s, "doomed"); m != n-sweepBatch || !tomb {
		t.Fatalf("after one batch: %d member keys, tombstone %v; want %d and a tombstone", m, tomb, n-sweepBatch)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := countMembers(t, s, "doomed"); got != 0 {
		t.Fatalf("CountMembers after reopen = %d, want 0", got)
	}
	waitSwept(t, s, "doomed")
	if got := countMembers(t, s, "kept"); got != 5 {
		t.Fatalf("the other group has %d members after the sweep, want 5", got)
	}
}

// TestPruneDeletesExpiredEvents: the hourly pruning removes events past
// MaxAge from disk, not only from readers' view, and keeps the count.
func TestPruneDeletesExpiredEvents(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetEventRetention(sweepTenant, storage.EventRetention{MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	err = s.Update(context.Background(), sweepTenant, func(tx storage.Tx) error {
		for i := range 30 {
			at := now.Add(-time.Duration(i) * 5 * time.Minute) // 0 .. 145 minutes ago
			if err := tx.AppendEvent(storage.Event{Time: at, Type: storage.EventSignIn}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.pruneExpiredEvents()
	n, err := s.countEvents(tenantPrefix(sweepTenant))
	if err != nil {
		t.Fatal(err)
	}
	if n != 12 { // 0, 5, ... 55 minutes ago
		t.Fatalf("%d events on disk after pruning, want 12", n)
	}
	if l := s.eventLog(sweepTenant); l.count != n {
		t.Fatalf("kept count %d, want %d", l.count, n)
	}
}
