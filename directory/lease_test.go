package directory_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap/zaptest"

	"github.com/portcullis/portcullis/directory"
	"github.com/portcullis/portcullis/storage/postgres"
	"github.com/portcullis/portcullis/storage/postgres/pgtest"
)

// syncCounter counts the full syncs a Syncer finished.
type syncCounter struct{ n atomic.Int64 }

func (c *syncCounter) UserDeprovisioned(string, time.Time) {}
func (c *syncCounter) SyncFinished(directory.Status)       { c.n.Add(1) }

// TestLeaseOneReplicaPulls: two replicas' Syncers on one PostgreSQL
// database; only the lease holder runs the schedule. When the holder dies
// (its lease connection is killed and it stops), the other takes the
// schedule over within about one lease retry; when the new holder's lease
// connection is cut while it lives on, it takes the lease again and its
// schedule starts anew (a Syncer's schedule is restartable). A sync asked
// of the replica without the lease runs there.
func TestLeaseOneReplicaPulls(t *testing.T) {
	const retry = 200 * time.Millisecond
	f := newFake(t)
	seed(f)
	dbURL := pgtest.NewDatabase(t)
	var syncers [2]*directory.Syncer
	var counts [2]*syncCounter
	for i := range syncers {
		st, err := postgres.Open(context.Background(), postgres.Options{URL: dbURL, PollInterval: retry, Logger: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		counts[i] = new(syncCounter)
		e := &env{t: t, fake: f}
		cfg := e.config(func(c *directory.Config) {
			c.Store = st
			c.ActivityPoll = -1
			c.Interval = time.Hour
			c.LeaseRetry = retry
			c.Observer = counts[i]
		})
		s, err := directory.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop) // registered after the store's Close, so it runs before it
		syncers[i] = s
	}
	syncers[0].Start()
	syncers[1].Start()

	waitFor := func(what string, limit time.Duration, cond func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !cond() {
			if time.Since(start) > limit {
				t.Fatalf("%s: not within %s (syncs %d and %d, lease held %v and %v)", what, limit,
					counts[0].n.Load(), counts[1].n.Load(), syncers[0].Status().LeaseHeld, syncers[1].Status().LeaseHeld)
			}
			time.Sleep(retry / 10)
		}
		return time.Since(start)
	}
	waitFor("a replica's first scheduled sync", 30*time.Second, func() bool { return counts[0].n.Load()+counts[1].n.Load() >= 1 })
	holder := 0
	if counts[1].n.Load() > 0 {
		holder = 1
	}
	other := 1 - holder
	time.Sleep(3 * retry) // the other tried the lease meanwhile, and was refused
	if st := syncers[other].Status(); counts[other].n.Load() != 0 || st.LeaseHeld || !st.NextRun.IsZero() {
		t.Fatalf("both replicas run the schedule: syncs %d and %d, other's status %+v", counts[0].n.Load(), counts[1].n.Load(), st)
	}
	if st := syncers[holder].Status(); !st.LeaseHeld || st.NextRun.IsZero() || st.Result != directory.ResultOK {
		t.Fatalf("holder's status %+v", st)
	}

	// Sync now, asked of the replica without the lease, runs there; the
	// holder's sync made every change already, so it makes none.
	st, err := syncers[other].Sync(t.Context())
	if err != nil || st.Counts.UsersCreated != 0 || st.LeaseHeld {
		t.Fatalf("sync now without the lease: %+v, %v", st, err)
	}
	counts[other].n.Store(0)

	// The holder dies: its lease connection ends without a release.
	killLeases(t, dbURL)
	syncers[holder].Stop()
	took := waitFor("the other takes the schedule over", 10*time.Second, func() bool { return counts[other].n.Load() >= 1 })
	t.Logf("schedule moved %s after the holder's lease connection was killed (lease retry %s)", took, retry)
	if !syncers[other].Status().LeaseHeld {
		t.Fatal("the new holder does not say it holds the lease")
	}

	// The new holder's lease connection is cut while it lives: it notices
	// (its ping fails), stops its schedule, takes the lease again and runs
	// the schedule anew, starting with a full sync.
	killLeases(t, dbURL)
	waitFor("the schedule restarts on the same Syncer", 10*time.Second, func() bool { return counts[other].n.Load() >= 2 })
}

// killLeases ends every server connection of the database holding an
// advisory lock, as when the replica holding it dies or is cut off.
func killLeases(t *testing.T, dbURL string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no connection held an advisory lock")
	}
}
