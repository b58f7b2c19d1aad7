package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/portcullis/portcullis/storage"
)

// tx implements storage.Tx (and so storage.ReadTx) on one PostgreSQL
// transaction of one tenant. Each method is one statement (a round trip)
// where it can be: several changes are joined with data-modifying CTEs.
type tx struct {
	ctx       context.Context
	tx        stmtRunner // pgx.Tx (Update) or *readTx (View)
	tenant    string
	channel   string // the change feed's channel (channelFor)
	writable  bool
	retention storage.EventRetention

	// failed is the first database error: PostgreSQL aborts the
	// transaction at it, so every later call returns it too, and Update
	// retries (serialization failure) or returns it even if fn did not.
	failed error
	// writes counts the writes fn asked for; past maxWrites they are
	// refused with storage.ErrTooBig and tooBig is set.
	writes int
	tooBig bool
	// observed is set by every write a cache keyed on Generation relies
	// on (see storage.Store.Generation): finish bumps the version.
	observed bool
	// appended counts the events appended, for the tenant's event count.
	appended int
	// pending are the appended events not inserted yet (see AppendEventID).
	pending pendingEvents
	// version is the tenant's change version this transaction committed
	// (0: it did not bump it).
	version int64
}

var _ storage.Tx = (*tx)(nil)

// maxWrites bounds the writes of one transaction. PostgreSQL itself has no
// practical limit, but a transaction that runs for minutes on a shared
// database holds its locks and serializable state, and keeps VACUUM from
// cleaning up after everyone else, for as long. The bound is above what
// Badger takes (~52,000 keys, fewer writes), so whatever commits on Badger
// commits here; a cascading delete (DeleteUser, DeleteGroup) counts as one
// write however many rows it removes.
const maxWrites = 60_000

// eventCountShards spreads each tenant's event count over rows, so that
// concurrent appenders rarely update the same one (see retention.go).
const eventCountShards = 16

// channelFor is the LISTEN/NOTIFY channel of change versions of the
// schema the store's tables are in: two installations in two schemas of
// one database must not take each other's versions for their own.
func channelFor(schema string) string {
	h := sha256.Sum256([]byte(schema))
	return fmt.Sprintf("portcullis_changes_%x", h[:8])
}

// ---- low-level helpers ----

// fail records err as the transaction's failure (the first one wins) and
// returns what the caller should see: ErrUniqueness for a unique
// violation, the error itself otherwise.
func (t *tx) fail(err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		err = fmt.Errorf("%w (%s)", storage.ErrUniqueness, pe.ConstraintName)
	} else if ctxErr := t.ctx.Err(); ctxErr != nil {
		err = ctxErr
	} else if !retryable(err) {
		err = fmt.Errorf("postgres: %w", err)
	}
	if t.failed == nil {
		t.failed = err
	}
	return err
}

// write counts one write, refusing it past maxWrites.
func (t *tx) write() error {
	if !t.writable {
		return errors.New("postgres: write in a read-only transaction")
	}
	if t.failed != nil {
		return t.failed
	}
	t.writes++
	if t.writes > maxWrites {
		t.tooBig = true
		return storage.ErrTooBig
	}
	return nil
}

func (t *tx) exec(sql string, args ...any) (pgconn.CommandTag, error) {
	if t.failed != nil {
		return pgconn.CommandTag{}, t.failed
	}
	tag, err := t.tx.Exec(t.ctx, sql, args...)
	return tag, t.fail(err)
}

// scanOne runs a query of one row; found is false when there is none.
func (t *tx) scanOne(sql string, args []any, dest ...any) (found bool, err error) {
	if t.failed != nil {
		return false, t.failed
	}
	err = t.tx.QueryRow(t.ctx, sql, args...).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, t.fail(err)
	}
	return true, nil
}

// docs runs a query whose rows are one JSON document each and decodes them.
func docs[T any](t *tx, sql string, args ...any) ([]*T, error) {
	if t.failed != nil {
		return nil, t.failed
	}
	rows, err := t.tx.Query(t.ctx, sql, args...)
	if err != nil {
		return nil, t.fail(err)
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		// The document is decoded from pgx's read buffer: the decoders
		// copy what they keep (storage.DecodeUser and encoding/json
		// both), so a copy of each row first (Scan into a []byte) was
		// an allocation and a copy of every record read for nothing.
		b, err := docBytes(rows)
		if err != nil {
			return nil, t.fail(err)
		}
		v := new(T)
		if err := decodeDoc(b, v); err != nil {
			return nil, t.fail(fmt.Errorf("postgres: a stored record does not decode: %w", err))
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail(err)
	}
	return out, nil
}

// docBytes is the current row's one column, a json document, as the JSON
// text in pgx's buffer (valid until the next row). A json value's binary
// form is its text; any other column is scanned (copied) as pgx does.
func docBytes(rows pgx.Rows) ([]byte, error) {
	fds, raw := rows.FieldDescriptions(), rows.RawValues()
	if len(fds) == 1 && len(raw) == 1 && fds[0].DataTypeOID == pgtype.JSONOID && raw[0] != nil {
		return raw[0], nil
	}
	var b []byte
	err := rows.Scan(&b)
	return b, err
}

// decodeDoc decodes a stored record into v: users with storage.DecodeUser
// (encoding/json's result in one pass; decoding users is most of the CPU
// of listing them), other records with encoding/json.
func decodeDoc(b []byte, v any) error {
	if u, ok := v.(*storage.User); ok {
		return storage.DecodeUser(b, u)
	}
	return json.Unmarshal(b, v)
}

// strs runs a query whose rows are one string each.
func (t *tx) strs(sql string, args ...any) ([]string, error) {
	if t.failed != nil {
		return nil, t.failed
	}
	rows, err := t.tx.Query(t.ctx, sql, args...)
	if err != nil {
		return nil, t.fail(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, t.fail(err)
	}
	return out, nil
}

func encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("postgres: encode: %w", err)
	}
	return b, nil
}

// finish runs before the commit: it adds the appended events to the
// tenant's count and, if the transaction wrote something caches rely on,
// bumps the tenant's change version and queues the notification that
// PostgreSQL delivers to the other replicas when (and only if) the
// transaction commits.
func (t *tx) finish() error {
	// One statement, so one round trip: the pending events, their count
	// and the version, as data-modifying CTEs.
	args := []any{t.tenant}
	var ctes []string
	if len(t.pending.ids) > 0 {
		sql, a := t.pending.insert(len(args) + 1)
		ctes = append(ctes, "e AS ("+sql+")")
		args = append(args, a...)
		t.pending = pendingEvents{}
	}
	if t.appended > 0 {
		ctes = append(ctes, fmt.Sprintf(`c AS (INSERT INTO event_counts AS c (tenant, shard, n) VALUES ($1, $%d, $%d)
			ON CONFLICT (tenant, shard) DO UPDATE SET n = c.n + excluded.n)`, len(args)+1, len(args)+2))
		args = append(args, rand.IntN(eventCountShards), t.appended)
	}
	if t.observed {
		ctes = append(ctes, `v AS (
				INSERT INTO tenant_versions AS tv (tenant, version) VALUES ($1, 1)
				ON CONFLICT (tenant) DO UPDATE SET version = tv.version + 1
				RETURNING version)`)
		args = append(args, t.channel)
		var notified string
		_, err := t.scanOne(fmt.Sprintf(`WITH %s SELECT version, pg_notify($%d, version::text || ' ' || $1)::text FROM v`,
			strings.Join(ctes, ",\n"), len(args)), args, &t.version, &notified)
		return err
	}
	if len(ctes) == 0 {
		return nil
	}
	_, err := t.exec(`WITH `+strings.Join(ctes, ",\n")+` SELECT 1`, args...)
	return err
}

// ---- keys ----

// fold is the case folding of case-insensitive lookups (Badger's too).
func fold(s string) string { return strings.ToLower(s) }

// key is the indexed form of a looked-up value: its SHA-256.
func key(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// optKey is key(s), or NULL for "" (not indexed).
func optKey(s string) []byte {
	if s == "" {
		return nil
	}
	return key(s)
}

// validText says whether s can be stored as PostgreSQL text: UTF-8 with no
// NUL byte. Ids, tenants and record kinds are; a lookup of anything else
// finds nothing rather than failing the transaction.
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

func validID(id string) bool { return id != "" && len(id) <= maxIDLen && validText(id) }
