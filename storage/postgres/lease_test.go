package postgres

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// TestLeaseMovesWhenHolderDies: two replicas on one database; one holds
// the lease, the other is refused; the holder's connection is killed
// (pg_terminate_backend, as when its process dies) and the other takes
// the lease within one interval, while the old holder sees it lost.
func TestLeaseMovesWhenHolderDies(t *testing.T) {
	const interval = 200 * time.Millisecond
	db := newDatabase(t)
	a := openStore(t, db, Options{PollInterval: interval})
	b := openStore(t, db, Options{PollInterval: interval})
	ctx := t.Context()

	la, held, err := a.TryLease(ctx, "directory.pull")
	if err != nil || !held {
		t.Fatalf("a: TryLease = %v, %v", held, err)
	}
	if _, held, err := b.TryLease(ctx, "directory.pull"); err != nil || held {
		t.Fatalf("b took a held lease: %v, %v", held, err)
	}
	if lo, held, err := b.TryLease(ctx, "other"); err != nil || !held {
		t.Fatalf("b: another lease name: %v, %v", held, err)
	} else {
		lo.Release()
	}

	if _, err := b.pool.Exec(ctx, "SELECT pg_terminate_backend($1)", la.(*lease).pid()); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var lb storage.Lease
	for lb == nil {
		l, held, err := b.TryLease(ctx, "directory.pull")
		if err != nil {
			t.Fatal(err)
		}
		if held {
			lb = l
			break
		}
		if time.Since(killed) > interval {
			t.Fatalf("b did not take the lease within %s of the holder's death", interval)
		}
		time.Sleep(interval / 10)
	}
	defer lb.Release()
	select {
	case <-la.Lost():
	case <-time.After(3 * interval):
		t.Fatal("a did not notice it lost the lease")
	}
	la.Release() // on a dead connection: must not hang or panic
	if _, held, _ := a.TryLease(ctx, "directory.pull"); held {
		t.Fatal("a took the lease b holds")
	}
}

// TestRunLeasedOneReplica: the same work on two replicas under one lease
// runs on one of them; when its lease connection dies, the other takes
// over within about one interval.
func TestRunLeasedOneReplica(t *testing.T) {
	const interval = 100 * time.Millisecond
	db := newDatabase(t)
	stores := []*Store{openStore(t, db, Options{PollInterval: interval}), openStore(t, db, Options{PollInterval: interval})}
	var runs [2]atomic.Int64
	var cancels [2]context.CancelFunc
	done := make(chan struct{}, 2)
	for i, s := range stores {
		ctx, cancel := context.WithCancel(t.Context())
		cancels[i] = cancel
		go func() {
			storage.RunLeased(ctx, s, "job", interval, func(context.Context) { runs[i].Add(1) }, nil)
			done <- struct{}{}
		}()
	}
	defer func() { cancels[0](); cancels[1](); <-done; <-done }()

	waitRuns := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * interval); !cond(); time.Sleep(interval / 5) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: runs %d and %d", what, runs[0].Load(), runs[1].Load())
			}
		}
	}
	waitRuns("someone runs", func() bool { return runs[0].Load()+runs[1].Load() >= 3 })
	holder := 0
	if runs[1].Load() > 0 {
		holder = 1
	}
	if runs[1-holder].Load() != 0 {
		t.Fatalf("both replicas ran the job: %d and %d", runs[0].Load(), runs[1].Load())
	}
	// The holder dies: its lease connection ends without a release, and
	// its loop stops.
	if _, err := stores[1-holder].pool.Exec(t.Context(),
		`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); err != nil {
		t.Fatal(err)
	}
	cancels[holder]()
	before := runs[1-holder].Load()
	waitRuns("the other takes over", func() bool { return runs[1-holder].Load() > before })
}
