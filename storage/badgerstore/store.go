// Package badgerstore owns Portcullis's embedded default backend: a
// storage.Store on Badger v4 with per-tenant key prefixes, secondary indexes
// kept in the same transaction as the records, serialisable read-write
// transactions retried on conflict, and synchronous (durable) commits.
package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"go.uber.org/zap"

	"github.com/portcullis/portcullis/internal/groupcommit"
	"github.com/portcullis/portcullis/storage"
)

var _ storage.Store = (*Store)(nil)

// Retry policy of Update on badger.ErrConflict. A transaction only
// conflicts when another one committed meanwhile, so of 50 concurrent
// updaters of one group the unluckiest needs at most 50 attempts;
// defaultMaxAttempts leaves ample room for others arriving meanwhile.
// Jittered backoff (capped at maxBackoff) spreads the losers out. Total
// wait is bounded by defaultMaxAttempts*maxBackoff/2 on average (~5 s)
// plus the commits themselves.
const (
	defaultMaxAttempts = 200
	baseBackoff        = 500 * time.Microsecond
	maxBackoff         = 50 * time.Millisecond
	gcInterval         = 5 * time.Minute
	pruneInterval      = time.Hour
	gcDiscardPct       = 0.5
)

// Memory-conscious Badger options. Badger's defaults (64 MiB memtables x 5,
// 256 MiB block cache, 1 GiB value-log files) are sized for a large
// database server; the gateway is one process among others, so its store
// is sized by Options (DefaultOptions for a gateway) and these:
const (
	// numMemtables: one memtable taking writes and one being flushed.
	numMemtables = 2
	// valueThreshold: values longer than this live in the value log, not
	// in the LSM tree (Badger's key-value separation). The tree then holds
	// keys, index entries and small values only (~50 bytes an entry), so
	// it fits the block cache, and key scans (memberships, index lookups)
	// do not read and decompress whole user records. User and group
	// records (~0.3-2 KiB of JSON) are read from the mmap'd value log
	// with no decompression.
	valueThreshold = 128
	// defaultValueLogFileSize: 64 MiB files keep each mmap small and let
	// GC rewrite one file at a time.
	defaultValueLogFileSize = 64 << 20
	// defaultTableCompression is none: Badger must copy a compressed block out
	// of the mapped file to decompress it, and keeps the copies in a
	// block cache on the Go heap (32 MiB at 100,000 users, doubled in RSS
	// by the collector's headroom), where an uncompressed block is read
	// in place from the page cache, which the mapped-memory bound and the
	// kernel can take back. At 100,000 users that is 72 -> 38 MiB of
	// anonymous memory for ~35% more table bytes on disk, and no slower
	// reads (bench: -only scale). Badger records each table's compression
	// in its manifest, so tables written compressed stay readable.
	defaultTableCompression = options.None
)

// tableCompression is defaultTableCompression; a variable only so a test
// can write tables as earlier versions did (Snappy).
var tableCompression = defaultTableCompression

// valueLogFileSize is defaultValueLogFileSize; a variable only so a test
// can fill several value-log files quickly.
var valueLogFileSize int64 = defaultValueLogFileSize

// Options sizes the store's memory. A zero field takes its value from
// DefaultOptions.
type Options struct {
	// MemTableSize is the in-memory write buffer. Badger allocates it as
	// one arena of ~1.3x this size on the Go heap, resident for as long
	// as the store is open (twice over while one is being flushed). It
	// also bounds the largest transaction to 15% of it (Badger counts
	// every write; pendingcounters.go): about 400 SCIM membership changes
	// (with their audit events) per MiB, so ~4,000 per request at the
	// default 10 MiB, ~6,500 at 16 MiB; beyond, storage.ErrTooBig (a SCIM
	// 413). The storage suite's 5,000 memberships in one transaction
	// need 10 MiB.
	MemTableSize int64
	// BlockCacheSize caches parsed blocks of the LSM tree. The store
	// writes its tables uncompressed (see tableCompression), so a block
	// is read in place from the mapped file and the cache saves only the
	// parsing of a block's header; the cache's own structures cost a
	// couple of MiB of heap (twice that in RSS once the collector's
	// headroom counts). Negative: no cache (the default). A store written
	// by an earlier version keeps its Snappy-compressed tables until
	// compaction rewrites them; without a cache each read of one of
	// those blocks decompresses it again (~2 µs), so a large old store
	// may want a cache until then.
	BlockCacheSize int64
	// MappedMemory bounds the resident pages of the store's mmap'd files
	// (value log, tables, memtable WAL), which Badger leaves mapped as
	// reads and writes touch them: while the store is in use, at most
	// every few seconds, when those pages exceed it, the store asks the
	// kernel to page its files out (mappedpages*.go). The data stays on
	// disk; a later read of a trimmed page reads it again. Negative:
	// never trim. MappedMemoryAuto: a quarter of the store's size on
	// disk, between 48 and 256 MiB (mappedBudget).
	MappedMemory int64
}

// MappedMemoryAuto is Options.MappedMemory's default: a bound that grows
// with the store, from 48 MiB to 256 MiB.
const MappedMemoryAuto int64 = -2

// DefaultOptions are the sizes for a gateway: see Options and the README's
// storage section for the trade-off.
var DefaultOptions = Options{
	MemTableSize:   10 << 20,
	BlockCacheSize: -1,
	MappedMemory:   MappedMemoryAuto,
}

// Minimums of Options: a smaller memtable could not hold a transaction of
// a couple of hundred member changes; a block cache smaller than a few
// blocks is no cache.
const (
	minMemTableSize   = 1 << 20
	minBlockCacheSize = 1 << 20
)

// WithDefaults fills zero fields from DefaultOptions and checks the rest.
func (o Options) WithDefaults() (Options, error) {
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultOptions.MemTableSize
	}
	if o.BlockCacheSize == 0 {
		o.BlockCacheSize = DefaultOptions.BlockCacheSize
	}
	if o.MappedMemory == 0 {
		o.MappedMemory = DefaultOptions.MappedMemory
	}
	if o.MemTableSize < minMemTableSize || o.MemTableSize >= 1<<31 {
		return o, fmt.Errorf("badgerstore: memtable size %d out of range [1 MiB, 2 GiB)", o.MemTableSize)
	}
	if o.BlockCacheSize > 0 && o.BlockCacheSize < minBlockCacheSize {
		return o, fmt.Errorf("badgerstore: block cache size %d under 1 MiB", o.BlockCacheSize)
	}
	if o.BlockCacheSize < 0 {
		o.BlockCacheSize = -1
	}
	if o.MappedMemory < 0 && o.MappedMemory != MappedMemoryAuto {
		o.MappedMemory = -1
	}
	return o, nil
}

// Store is a storage.Store on an embedded Badger database.
type Store struct {
	db     *badger.DB
	dir    string
	logger *zap.Logger

	// mu guards closed: View and Update hold it shared, Close exclusively,
	// so Close waits for transactions in flight and none start after.
	mu     sync.RWMutex
	closed bool

	generations sync.Map // tenant -> *atomic.Uint64
	// countCache holds id-bucket counters per snapshot (countcache.go).
	countCache sync.Map
	// queue holds the Updates waiting to share the next transaction
	// (groupcommit.go); grouped counts fns committed in a group of two
	// or more.
	queue      *groupcommit.Queue[update]
	grouped    atomic.Uint64
	retentions sync.Map // tenant -> storage.EventRetention (with defaults)
	eventLogs  sync.Map // tenant -> *eventLog

	// maxAttempts is the retry bound of Update (defaultMaxAttempts; tests
	// lower it).
	maxAttempts int
	// conflicts counts attempts that Badger refused for a conflict and
	// that ran again (or gave up); benchmarks report it per operation.
	conflicts atomic.Uint64

	// stop ends the background goroutines (GC and event pruning, the
	// sweeper, the compactor); Close waits for them.
	stop      chan struct{}
	gcDone    chan struct{}
	sweepKick chan struct{}
	sweepDone chan struct{}
	// writeKick wakes the on-demand compactor after commits
	// (compaction.go); compactDone is closed when it has stopped.
	writeKick   chan struct{}
	compactDone chan struct{}
	// trimKick wakes the trimmer of mapped pages after commits and reads
	// (mappedpages.go; nil when Options.MappedMemory is negative);
	// trimDone is closed when it has stopped.
	trimKick  chan struct{}
	trimDone  chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// ErrClosed is returned by View and Update after Close.
var ErrClosed = errors.New("badgerstore: store is closed")

// Open opens (creating if needed) the Badger database in dir with
// DefaultOptions. Commits are synchronous: when Update returns nil the
// change is on disk. A nil logger discards Badger's messages.
func Open(dir string, logger *zap.Logger) (*Store, error) {
	return OpenWithOptions(dir, logger, Options{})
}

// OpenWithOptions is Open with the memory sizes of opts (zero fields:
// DefaultOptions).
func OpenWithOptions(dir string, logger *zap.Logger, opts Options) (*Store, error) {
	return open(dir, logger, opts, true)
}

// open is OpenWithOptions; sweep false leaves tombstones unswept (for
// tests of a crash mid-sweep).
func open(dir string, logger *zap.Logger, opts Options, sweep bool) (*Store, error) {
	opts, err := opts.WithDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	logger = logger.Named("badger")
	db, err := badger.Open(badgerOptions(dir, logger, opts, 0))
	if err != nil {
		return nil, fmt.Errorf("badgerstore: open %s: %w", dir, err)
	}
	if err := upgradeSchema(db, dir, logger); err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{
		db:          db,
		dir:         dir,
		logger:      logger,
		maxAttempts: defaultMaxAttempts,
		queue:       newCommitQueue(),
		stop:        make(chan struct{}),
		gcDone:      make(chan struct{}),
		sweepKick:   make(chan struct{}, 1),
		sweepDone:   make(chan struct{}),
		writeKick:   make(chan struct{}, 1),
		compactDone: make(chan struct{}),
		trimDone:    make(chan struct{}),
	}
	go s.runGC()
	go s.runCompactor()
	if opts.MappedMemory > 0 || opts.MappedMemory == MappedMemoryAuto {
		s.trimKick = make(chan struct{}, 1)
		go s.runTrimmer(opts.MappedMemory)
	} else {
		close(s.trimDone)
	}
	if sweep {
		go s.runSweeper()
	} else {
		close(s.sweepDone)
	}
	return s, nil
}

// badgerOptions are the options of every Badger database of a store:
// synchronous commits and the memory bounds above. compactors is Badger's
// NumCompactors: 0 in a Store, which compacts on demand (compaction.go);
// a one-off process that writes in bulk with no Store around it (a
// restore) passes 2, Badger's own polling compactors.
func badgerOptions(dir string, logger *zap.Logger, opts Options, compactors int) badger.Options {
	return badger.DefaultOptions(dir).
		WithSyncWrites(true).
		// Not WithLoggingLevel: it replaces the logger with Badger's own
		// stderr one. zapLogger does the level filtering instead.
		WithLogger(zapLogger{logger.Sugar()}).
		WithMemTableSize(opts.MemTableSize).
		WithNumMemtables(numMemtables).
		WithBlockCacheSize(max(opts.BlockCacheSize, 0)).
		WithCompression(tableCompression).
		WithValueThreshold(valueThreshold).
		WithValueLogFileSize(valueLogFileSize).
		WithNumCompactors(compactors).
		WithNumLevelZeroTablesStall(level0Stall).
		WithMetricsEnabled(false).
		WithDetectConflicts(true)
}

// runGC reclaims value-log space left by overwritten and deleted values,
// and hourly deletes audit events past their tenant's MaxAge.
func (s *Store) runGC() {
	defer close(s.gcDone)
	t := time.NewTicker(gcInterval)
	defer t.Stop()
	prune := time.NewTicker(pruneInterval)
	defer prune.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-prune.C:
			s.pruneExpiredEvents()
		case <-t.C:
			// Each successful call rewrites one file; repeat until there
			// is nothing worth rewriting, but stop promptly on Close.
			for i := 0; i < 100; i++ {
				select {
				case <-s.stop:
					return
				default:
				}
				if err := s.db.RunValueLogGC(gcDiscardPct); err != nil {
					if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
						s.logger.Warn("value log GC failed", zap.Error(err))
					}
					break
				}
			}
		}
	}
}

// Close stops the background GC and closes the database. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.gcDone
		<-s.sweepDone
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		// After the last commit: a compaction in progress then ends.
		<-s.compactDone
		<-s.trimDone
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

func (s *Store) generation(tenant string) *atomic.Uint64 {
	if g, ok := s.generations.Load(tenant); ok {
		return g.(*atomic.Uint64)
	}
	g, _ := s.generations.LoadOrStore(tenant, new(atomic.Uint64))
	return g.(*atomic.Uint64)
}

// Generation counts the committed Updates of the tenant since Open that
// wrote something caches rely on (see storage.Store.Generation; each write
// method of tx marks itself). It lives in memory only: caches in this
// process compare it, and it starts at 0 in a new process, where every
// cache starts empty too.
func (s *Store) Generation(tenant string) uint64 {
	return s.generation(tenant).Load()
}

func checkTenant(tenant string) error {
	if tenant == "" {
		return errors.New("badgerstore: empty tenant")
	}
	if len(tenant) > maxTenantLen {
		return fmt.Errorf("badgerstore: tenant name longer than %d bytes", maxTenantLen)
	}
	return nil
}

// View runs fn in a read-only snapshot of the tenant.
func (s *Store) View(ctx context.Context, tenant string, fn func(storage.ReadTx) error) error {
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
	s.kickTrimmer()
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	return fn(&tx{txn: txn, k: keyer{tenantPrefix(tenant)}, retention: s.retention(tenant), countCache: &s.countCache})
}

// fnError marks an error returned by the caller's fn, which is never retried.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// Update runs fn in a read-write transaction of the tenant and commits it
// synchronously, retrying on conflict with jittered exponential backoff.
// After the commit it bumps Generation if the transaction wrote something
// caches rely on, wakes the sweeper if it deleted a group, and holds the
// tenant's audit log to its cap if it appended events.
func (s *Store) Update(ctx context.Context, tenant string, fn func(storage.Tx) error) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.countEventsOnce(tenant)
	return s.groupUpdate(ctx, tenant, fn)
}

// updateAlone is Update for one fn in a transaction of its own (see
// groupcommit.go for when others join it).
func (s *Store) updateAlone(ctx context.Context, tenant string, fn func(storage.Tx) error) error {
	retention := s.retention(tenant)
	t, err := s.run(ctx, tenantPrefix(tenant), func(t *tx) error {
		t.retention = retention
		return fn(t)
	})
	if err != nil {
		return err
	}
	s.committed(tenant, t)
	return nil
}

// committed follows the commit of t, a transaction of the tenant.
func (s *Store) committed(tenant string, t *tx) {
	if t.observed {
		s.generation(tenant).Add(1)
	}
	if t.tombstoned {
		s.kickSweeper()
	}
	if t.appended > 0 {
		s.eventsAppended(tenant, t.appended)
	}
}

// run runs fn in a read-write transaction under prefix and commits it,
// retrying on conflict, and returns the committed transaction (for what
// it recorded of its writes). fn's own error comes back as is. Update and
// the store's background work (sweeping, pruning) share it.
func (s *Store) run(ctx context.Context, prefix []byte, fn func(*tx) error) (*tx, error) {
	backoff := groupcommit.Backoff{Base: baseBackoff, Max: maxBackoff}
	defer backoff.Stop()
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t, err := s.attempt(prefix, fn)
		if err == nil {
			s.kickCompactor()
			s.kickTrimmer()
			return t, nil
		}
		var fe fnError
		if errors.As(err, &fe) {
			return nil, fe.err
		}
		if errors.Is(err, storage.ErrTooBig) {
			return nil, err // the same writes would be refused again
		}
		if !errors.Is(err, badger.ErrConflict) {
			return nil, fmt.Errorf("badgerstore: commit: %w", err)
		}
		s.conflicts.Add(1)
		if attempt >= s.maxAttempts {
			return nil, storage.ErrConflict
		}
		if err := backoff.Wait(ctx, attempt); err != nil {
			return nil, err
		}
	}
}

func (s *Store) attempt(prefix []byte, fn func(*tx) error) (*tx, error) {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	t := &tx{txn: txn, k: keyer{prefix}, writable: true}
	if err := fn(t); err != nil {
		return nil, fnError{err}
	}
	if err := t.settle(); err != nil {
		if errors.Is(err, storage.ErrTooBig) {
			return nil, err
		}
		return nil, fnError{err}
	}
	if err := t.written(txn.Commit()); err != nil {
		return nil, err
	}
	return t, nil
}

// zapLogger routes Badger's log lines to zap. Info and debug are dropped:
// Badger is chatty at those levels (every compaction, every open).
type zapLogger struct{ s *zap.SugaredLogger }

func (l zapLogger) Errorf(f string, v ...interface{}) {
	l.s.Errorf(strings.TrimRight(f, "\n"), v...)
}

func (l zapLogger) Warningf(f string, v ...interface{}) {
	l.s.Warnf(strings.TrimRight(f, "\n"), v...)
}

func (zapLogger) Infof(string, ...interface{})  {}
func (zapLogger) Debugf(string, ...interface{}) {}
