package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis/portcullis/storage"
)

var _ storage.Leaser = (*Store)(nil)

// A lease is a session-level advisory lock (pg_try_advisory_lock) held on
// a connection of its own, outside the pool: the server releases it when
// that connection ends, so a replica that dies (or is cut off) loses its
// leases as soon as the server notices, and another replica's TryLease
// takes them. The holder pings its connection every poll interval and
// closes Lost when the ping fails.

// leaseKey is the advisory lock key of a lease name: a hash, in a space of
// its own (the prefix) apart from migrationLockKey.
func leaseKey(name string) int64 {
	sum := sha256.Sum256([]byte("portcullis lease\x00" + name))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// TryLease implements storage.Leaser.
func (s *Store) TryLease(ctx context.Context, name string) (storage.Lease, bool, error) {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil, false, ErrClosed
	}
	conn, err := pgx.ConnectConfig(ctx, s.feed.listenConfig.Copy())
	if err != nil {
		return nil, false, fmt.Errorf("postgres: lease %q: %w", name, err)
	}
	var held bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", leaseKey(name)).Scan(&held); err != nil {
		conn.Close(context.Background())
		return nil, false, fmt.Errorf("postgres: lease %q: %w", name, err)
	}
	if !held {
		conn.Close(context.Background())
		return nil, false, nil
	}
	l := &lease{name: name, conn: conn, lost: make(chan struct{}), stop: make(chan struct{})}
	l.wg.Add(1)
	go l.watch(s.feed.pollInterval, s.ctx)
	return l, true, nil
}

type lease struct {
	name string

	mu   sync.Mutex // guards conn: the watcher and Release share it
	conn *pgx.Conn

	lost     chan struct{}
	lostOnce sync.Once
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

func (l *lease) Lost() <-chan struct{} { return l.lost }

// watch pings the lease's connection every interval; a failed ping means
// the server may already have released the lock to someone else.
func (l *lease) watch(interval time.Duration, storeCtx context.Context) {
	defer l.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-storeCtx.Done():
			l.markLost()
			return
		case <-t.C:
		}
		l.mu.Lock()
		ctx, cancel := context.WithTimeout(context.Background(), interval)
		err := l.conn.Ping(ctx)
		cancel()
		l.mu.Unlock()
		if err != nil {
			l.markLost()
			return
		}
	}
}

func (l *lease) markLost() {
	l.lostOnce.Do(func() { close(l.lost) })
}

// PID is the server process holding the lease (for tests and logs).
func (l *lease) pid() uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conn.PgConn().PID()
}

// Release unlocks and closes the connection (closing it alone would
// release the lock too; unlocking first makes it immediate).
func (l *lease) Release() {
	l.stopOnce.Do(func() {
		close(l.stop)
		l.wg.Wait()
		l.mu.Lock()
		defer l.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = l.conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", leaseKey(l.name))
		_ = l.conn.Close(ctx)
		l.markLost()
	})
}
