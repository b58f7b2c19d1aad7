// Package postgres owns Portcullis's shared backend: a storage.Store on
// PostgreSQL (pgx and its pool), so that several gateways behind a load
// balancer share one directory, one set of sessions and one audit log.
//
// Read-write transactions are SERIALIZABLE and retried on serialization
// failures and deadlocks; commits are synchronous (a connection never runs
// with synchronous_commit off), so when Update returns nil the change is
// durable. The schema is migrated on Open (schema.go). Generation is a
// per-tenant change version kept in the database and learnt by every
// replica through LISTEN/NOTIFY, with polling as the fallback
// (changefeed.go).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/portcullis/portcullis/internal/groupcommit"
	"github.com/portcullis/portcullis/storage"
)

var (
	_ storage.Store           = (*Store)(nil)
	_ storage.ChangeFreshness = (*Store)(nil)
)

// Retry policy of Update on serialization failures (SQLSTATE 40001) and
// deadlocks (40P01), the same as Badger's on conflicts: of 50 concurrent
// updaters of one group the unluckiest needs at most 50 attempts, and 200
// leave room for others arriving meanwhile. Jittered backoff spreads the
// losers out.
const (
	defaultMaxAttempts = 200
	baseBackoff        = 500 * time.Microsecond
	maxBackoff         = 50 * time.Millisecond
)

// Options configure Open.
type Options struct {
	// URL is a libpq connection string or URL ("postgres://…").
	URL string
	// PoolSize bounds the pool's connections (0: pgxpool's default,
	// max(4, number of CPUs)). The change feed holds one more.
	PoolSize int
	// StatementTimeout, if positive, makes the server cancel any statement
	// running longer (the session's statement_timeout).
	StatementTimeout time.Duration
	// PollInterval is how often a replica whose notification connection
	// is down reads every tenant's version (0: DefaultPollInterval). It is
	// also how long the notification connection may stay silent before it
	// is checked.
	PollInterval time.Duration
	// Logger receives the store's warnings (nil: discarded).
	Logger *zap.Logger
}

// DefaultPollInterval bounds how late a replica learns of a change while
// its notification connection is down.
const DefaultPollInterval = 2 * time.Second

// ErrClosed is returned by View and Update after Close.
var ErrClosed = errors.New("postgres: store is closed")

// Store is a storage.Store on PostgreSQL.
type Store struct {
	pool   *pgxpool.Pool
	logger *zap.Logger

	// mu guards closed: View and Update hold it shared, Close exclusively.
	mu     sync.RWMutex
	closed bool

	versions   sync.Map // tenant -> *atomic.Uint64: last known change version
	queues     sync.Map // tenant -> *groupcommit.Queue[update] (groupcommit.go)
	retentions sync.Map // tenant -> storage.EventRetention (with defaults)
	feed       changeFeed

	maxAttempts int
	retries     atomic.Uint64 // attempts that failed to serialise and ran again
	grouped     atomic.Uint64 // fns committed in a group of two or more (groupcommit.go)

	ctx       context.Context // cancelled by Close: ends background work
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	ending    sync.WaitGroup // Views' ROLLBACKs still running (view)
	closeOnce sync.Once
}

// Open connects to the database, migrates its schema (refusing one newer
// than this binary knows, ErrSchemaTooNew), learns every tenant's change
// version and starts the change feed.
func Open(ctx context.Context, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("postgres: the database URL does not parse")
	}
	if opts.PoolSize > 0 {
		cfg.MaxConns = int32(opts.PoolSize)
	}
	if opts.StatementTimeout > 0 {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(opts.StatementTimeout.Milliseconds())
	}
	if v, ok := cfg.ConnConfig.RuntimeParams["synchronous_commit"]; ok && v == "off" {
		return nil, errors.New("postgres: synchronous_commit=off in the database URL: the store promises that a committed write survives a crash")
	}
	// A server or role configured with synchronous_commit off would lose
	// acknowledged writes in a crash: such a session is switched back on.
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		var sc string
		if err := c.QueryRow(ctx, "SHOW synchronous_commit").Scan(&sc); err != nil {
			return err
		}
		if sc == "off" {
			_, err := c.Exec(ctx, "SET synchronous_commit = on")
			return err
		}
		return nil
	}
	logger := opts.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	poll := opts.PollInterval
	if poll <= 0 {
		poll = DefaultPollInterval
	}
	bg, cancel := context.WithCancel(context.Background())
	s := &Store{
		pool:        pool,
		logger:      logger.Named("postgres"),
		maxAttempts: defaultMaxAttempts,
		ctx:         bg,
		cancel:      cancel,
	}
	s.feed.pollInterval = poll
	s.feed.down = make(chan struct{}, 1)
	var schema string
	if err := pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s.feed.channel = channelFor(schema)
	s.feed.listenConfig = cfg.ConnConfig.Copy()
	if err := s.resync(ctx, pool); err != nil {
		s.Close()
		return nil, fmt.Errorf("postgres: reading change versions: %w", err)
	}
	s.wg.Add(3)
	go s.runListener()
	go s.runPoller()
	go s.runMaintenance()
	return s, nil
}

// Close stops the background work and closes the pool, after the
// transactions in flight. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.ending.Wait()
		s.pool.Close()
	})
	return nil
}

// maxTenantLen and maxIDLen bound tenant names and ids, as Badger does, so
// the same data fits either backend.
const (
	maxTenantLen = 512
	maxIDLen     = 512
)

func checkTenant(tenant string) error {
	if tenant == "" {
		return errors.New("postgres: empty tenant")
	}
	if len(tenant) > maxTenantLen {
		return fmt.Errorf("postgres: tenant name longer than %d bytes", maxTenantLen)
	}
	if !validText(tenant) {
		return errors.New("postgres: tenant name is not UTF-8 text")
	}
	return nil
}

// View runs fn in a read-only REPEATABLE READ transaction: one consistent
// snapshot, which never fails to serialise. Its BEGIN travels with fn's
// first statement (readtx.go).
func (s *Store) View(ctx context.Context, tenant string, fn func(storage.ReadTx) error) error {
	return unavailable(ctx, s.view(ctx, tenant, fn))
}

func (s *Store) view(ctx context.Context, tenant string, fn func(storage.ReadTx) error) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	rt := &readTx{conn: conn}
	// The answer is ready when fn returns: its ROLLBACK is a round trip
	// nothing waits for, so it runs after View returns, and the
	// connection goes back to the pool when it is done. Close waits for
	// it (s.ending).
	defer func() {
		if !rt.begun {
			rt.end() // nothing was sent: the connection is idle
			return
		}
		s.ending.Go(rt.end)
	}()
	t := &tx{ctx: ctx, tx: rt, tenant: tenant, retention: s.retention(tenant)}
	if err := fn(t); err != nil {
		return err
	}
	if t.failed != nil {
		return t.failed
	}
	return nil
}

// Update runs fn in a SERIALIZABLE transaction and commits it, retrying
// on serialization failures and deadlocks. A transaction that wrote
// something caches rely on bumps the tenant's change version before it
// commits and notifies the other replicas (delivered at commit); this
// store's Generation has the new version when Update returns. A
// transaction that appended events then holds the audit log to its cap.
// Concurrent Updates of one tenant share a transaction (group commit, see
// groupcommit.go); each still gets its own outcome.
//
// A connection failure (the database down or unreachable) is returned
// wrapped in storage.ErrUnavailable and not retried here: the caller
// answers 503 and its client retries.
func (s *Store) Update(ctx context.Context, tenant string, fn func(storage.Tx) error) error {
	return unavailable(ctx, s.update(ctx, tenant, fn))
}

func (s *Store) update(ctx context.Context, tenant string, fn func(storage.Tx) error) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.groupUpdate(ctx, tenant, fn)
}

// updateAlone is Update for one fn in a transaction of its own (see
// groupcommit.go for when others join it).
func (s *Store) updateAlone(ctx context.Context, tenant string, fn func(storage.Tx) error) error {
	retention := s.retention(tenant)
	backoff := groupcommit.Backoff{Base: baseBackoff, Max: maxBackoff}
	defer backoff.Stop()
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		t, err := s.attempt(ctx, tenant, retention, fn)
		if err == nil {
			s.committed(ctx, tenant, t)
			return nil
		}
		if !retryable(err) {
			if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
				return fmt.Errorf("%w (%v)", ctxErr, err)
			}
			return err
		}
		if attempt >= s.maxAttempts {
			return storage.ErrConflict
		}
		s.retries.Add(1)
		if err := backoff.Wait(ctx, attempt); err != nil {
			return err
		}
	}
}

// attempt runs fn once in a fresh transaction and commits it. The error is
// fn's own, the first database error of the transaction (which aborts it
// in PostgreSQL, whether or not fn passed it on), or the commit's.
func (s *Store) attempt(ctx context.Context, tenant string, retention storage.EventRetention, fn func(storage.Tx) error) (*tx, error) {
	pt, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		return nil, fmt.Errorf("postgres: begin: %w", err)
	}
	defer pt.Rollback(context.Background())
	t := &tx{ctx: ctx, tx: pt, tenant: tenant, channel: s.feed.channel, writable: true, retention: retention}
	if err := fn(t); err != nil {
		if t.failed != nil && retryable(t.failed) {
			return nil, t.failed
		}
		return nil, err
	}
	if t.tooBig {
		return nil, storage.ErrTooBig
	}
	if t.failed != nil {
		return nil, t.failed
	}
	if err := t.finish(); err != nil {
		return nil, err
	}
	if err := pt.Commit(ctx); err != nil {
		return nil, fmt.Errorf("postgres: commit: %w", err)
	}
	return t, nil
}

// retryable says whether err is a serialization failure or a deadlock:
// the transaction was rolled back and may simply run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// version is the tenant's last known change version.
func (s *Store) version(tenant string) *atomic.Uint64 {
	if v, ok := s.versions.Load(tenant); ok {
		return v.(*atomic.Uint64)
	}
	v, _ := s.versions.LoadOrStore(tenant, new(atomic.Uint64))
	return v.(*atomic.Uint64)
}

// noteVersion raises the tenant's known version to v (never lowers it:
// notifications and polls may arrive out of order).
func (s *Store) noteVersion(tenant string, v uint64) {
	g := s.version(tenant)
	for {
		cur := g.Load()
		if v <= cur || g.CompareAndSwap(cur, v) {
			return
		}
	}
}

// Generation is the tenant's change version as this replica last learnt
// it: at once for its own commits, through notifications (or polling)
// for other replicas'. It is an atomic read.
func (s *Store) Generation(tenant string) uint64 {
	if v, ok := s.versions.Load(tenant); ok {
		return v.(*atomic.Uint64).Load()
	}
	return 0
}

// committed does what follows a committed transaction t of tenant, alone
// or a group's: the change feed learns its version, and the audit log is
// held to its cap when it appended events.
func (s *Store) committed(ctx context.Context, tenant string, t *tx) {
	if t.version > 0 {
		s.noteVersion(tenant, uint64(t.version))
	}
	if t.appended > 0 {
		if err := s.holdCap(ctx, tenant); err != nil {
			// The commit stands; the next append or prune tries again.
			s.logger.Warn("holding the audit log to its cap failed", zap.String("tenant", tenant), zap.Error(err))
		}
	}
}
