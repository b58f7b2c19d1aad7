package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
)

// The change feed: how a replica learns that another one committed a
// change its caches rely on.
//
// Each tenant has a version in tenant_versions, bumped in the same
// transaction as the change (tx.finish), which also queues
// pg_notify(channel, '<version> <tenant>'): PostgreSQL
// delivers it to every listening session when, and only if, the
// transaction commits. Each replica holds one dedicated connection that
// LISTENs and raises its in-memory version of the tenant (noteVersion;
// Generation reads it atomically). The committing replica raises its own
// before Update returns, from the version its transaction wrote.
//
// When the listening connection is down, the poller reads every tenant's
// version every PollInterval instead; when it comes back, the listener
// reads them all once after LISTEN (so nothing committed while it was away
// is missed) and polling stops. A listening connection that stays silent
// for a PollInterval is pinged, so a dead one is noticed even without a
// TCP reset.

// changeFeed is the state of the change feed.
type changeFeed struct {
	pollInterval time.Duration
	listenConfig *pgx.ConnConfig
	channel      string // see channelFor

	listening atomic.Bool
	// down is signalled (without blocking) each time the listening
	// connection fails; the poller sleeps on it while notifications flow.
	down      chan struct{}
	listenPID atomic.Uint32 // backend pid of the listening connection
	polls     atomic.Uint64
	connects  atomic.Uint64
	// currentAt is the last time the versions were known current: every
	// version read (Open, a poll, the listener's resynchronisation), or
	// the listening connection shown alive (a notification, a ping).
	// notifiedAt is when the last notification arrived. Unix nanoseconds,
	// 0: never.
	currentAt  atomic.Int64
	notifiedAt atomic.Int64
}

// FeedState describes the change feed, for tests and metrics.
type FeedState struct {
	// Listening: the notification connection is up and listening.
	Listening bool
	// ListenPID is the server process id of the notification connection
	// (0 before the first connect).
	ListenPID uint32
	// Connects counts the notification connection's (re)connections;
	// Polls counts the polls made while it was down.
	Connects, Polls uint64
	// Behind: see ChangesBehind.
	Behind time.Duration
	// LastNotification is when the last change notification arrived
	// (zero: none since Open).
	LastNotification time.Time
}

// Feed reports the state of the change feed.
func (s *Store) Feed() FeedState {
	return FeedState{
		Listening: s.feed.listening.Load(),
		ListenPID: s.feed.listenPID.Load(),
		Connects:  s.feed.connects.Load(),
		Polls:     s.feed.polls.Load(),

		Behind:           s.ChangesBehind(),
		LastNotification: unixNanoTime(s.feed.notifiedAt.Load()),
	}
}

// ChangesBehind implements storage.ChangeFreshness: 0 while the
// notification connection is listening, else the time since the versions
// were last known current: the last poll, or the last sign of life of the
// listening connection before it went down. (A listening connection that
// died silently is noticed within two poll intervals, see listen.)
func (s *Store) ChangesBehind() time.Duration {
	if s.feed.listening.Load() {
		return 0
	}
	at := s.feed.currentAt.Load()
	if at == 0 {
		return 0 // Open read every version before starting the feed
	}
	return max(0, time.Since(time.Unix(0, at)))
}

func unixNanoTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// querier is what resync needs of a connection or the pool.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// resync reads every tenant's version.
func (s *Store) resync(ctx context.Context, q querier) error {
	rows, err := q.Query(ctx, `SELECT tenant, version FROM tenant_versions`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var tenant string
		var v int64
		if err := rows.Scan(&tenant, &v); err != nil {
			return err
		}
		s.noteVersion(tenant, uint64(v))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	s.feed.currentAt.Store(time.Now().UnixNano())
	return nil
}

// parseNotification reads "<version> <tenant>".
func parseNotification(payload string) (tenant string, version uint64, err error) {
	num, tenant, ok := strings.Cut(payload, " ")
	if !ok || tenant == "" {
		return "", 0, fmt.Errorf("postgres: malformed change notification %q", payload)
	}
	version, err = strconv.ParseUint(num, 10, 64)
	return tenant, version, err
}

// runListener keeps a listening connection up until Close.
func (s *Store) runListener() {
	defer s.wg.Done()
	backoff := 50 * time.Millisecond
	for {
		err := s.listen(s.ctx)
		s.feed.listening.Store(false)
		if s.ctx.Err() != nil {
			return
		}
		select {
		case s.feed.down <- struct{}{}:
		default:
		}
		s.logger.Warn("change notifications interrupted; polling until they are back", zap.Error(err))
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.feed.pollInterval)
	}
}

// listen connects, LISTENs, resynchronises and then applies notifications
// until the connection fails.
func (s *Store) listen(ctx context.Context) error {
	cfg := s.feed.listenConfig.Copy()
	// Named after the URL's application_name when it has one, so an
	// operator (or a test) tells the replicas' listeners apart.
	name := cfg.RuntimeParams["application_name"]
	if name == "" {
		name = "portcullis"
	}
	cfg.RuntimeParams["application_name"] = name + "-changefeed"
	connectCtx, cancel := context.WithTimeout(ctx, s.feed.pollInterval+5*time.Second)
	conn, err := pgx.ConnectConfig(connectCtx, cfg)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	s.feed.connects.Add(1)
	s.feed.listenPID.Store(conn.PgConn().PID())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.feed.channel}.Sanitize()); err != nil {
		return err
	}
	// After LISTEN: a change committed from here on is notified, and one
	// committed before is in the table.
	if err := s.resync(ctx, conn); err != nil {
		return err
	}
	s.feed.listening.Store(true)
	for {
		waitCtx, cancel := context.WithTimeout(ctx, s.feed.pollInterval)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !pgconn.Timeout(err) && !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			// Silent for a poll interval: check the connection is alive.
			pingCtx, cancel := context.WithTimeout(ctx, s.feed.pollInterval)
			err = conn.Ping(pingCtx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
			s.feed.currentAt.Store(time.Now().UnixNano())
			continue
		}
		if n.Channel != s.feed.channel {
			continue
		}
		tenant, v, err := parseNotification(n.Payload)
		if err != nil {
			s.logger.Warn("ignoring a change notification", zap.Error(err))
			continue
		}
		now := time.Now().UnixNano()
		s.feed.notifiedAt.Store(now)
		s.feed.currentAt.Store(now)
		s.noteVersion(tenant, v)
	}
}

// runPoller reads every tenant's version each poll interval while the
// listening connection is down. While notifications flow it sleeps on
// feed.down: no timer, so an idle gateway is not woken each interval.
func (s *Store) runPoller() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.feed.down:
		}
		if !s.pollWhileDown() {
			return
		}
	}
}

// pollWhileDown polls each interval until the listener is back; false
// when the store is closing.
func (s *Store) pollWhileDown() bool {
	t := time.NewTicker(s.feed.pollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return false
		case <-t.C:
		}
		if s.feed.listening.Load() {
			return true
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.feed.pollInterval)
		err := s.resync(ctx, s.pool)
		cancel()
		if err != nil {
			if s.ctx.Err() == nil {
				s.logger.Warn("polling change versions failed", zap.Error(err))
			}
			continue
		}
		s.feed.polls.Add(1)
	}
}
