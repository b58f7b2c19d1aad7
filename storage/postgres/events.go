package postgres

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// Events limits (Badger's).
const (
	defaultEventLimit = 100
	maxEventLimit     = 1000
)

// newEventID returns 16 hex digits of the big-endian Unix nanoseconds of at
// followed by 16 random hex digits: ids sort by time, and ids made in the
// same nanosecond (or on two replicas) differ. The same format as Badger's,
// so a reference shown to a person reads the same on either backend.
func newEventID(at time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], eventNanos(at))
	if _, err := rand.Read(b[8:]); err != nil {
		panic(fmt.Sprintf("postgres: crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// eventIDFloor is the smallest id of an event at time at.
func eventIDFloor(at time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], eventNanos(at))
	return hex.EncodeToString(b[:])
}

func eventNanos(at time.Time) uint64 {
	n := at.UnixNano()
	if n < 0 {
		return 0
	}
	return uint64(n)
}

func (t *tx) AppendEvent(e storage.Event) error {
	_, err := t.AppendEventID(e)
	return err
}

func (t *tx) AppendEventID(e storage.Event) (string, error) {
	if err := t.write(); err != nil {
		return "", err
	}
	if !validText(e.Type) {
		return "", fmt.Errorf("postgres: event type must be UTF-8 text")
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.ID = newEventID(e.Time)
	doc, err := encode(e)
	if err != nil {
		return "", err
	}
	// Inserted by finish, in the statement that counts them and bumps
	// the version, or before a read of the events (flushEvents): a SCIM
	// write and its event cost one round trip, not two.
	t.pending.ids = append(t.pending.ids, e.ID)
	t.pending.types = append(t.pending.types, e.Type)
	t.pending.docs = append(t.pending.docs, string(doc))
	t.appended++
	return e.ID, nil
}

// pendingEvents are the events appended and not inserted yet, as the
// columns of the insert.
type pendingEvents struct {
	ids, types, docs []string
}

// insertPending is the data-modifying CTE body that inserts the pending
// events, its arguments numbered from first on ($1 is the tenant).
func (p *pendingEvents) insert(first int) (string, []any) {
	return fmt.Sprintf(`INSERT INTO events (tenant, id, type, doc)
			SELECT $1, i, ty, d::json FROM unnest($%d::text[], $%d::text[], $%d::text[]) AS x(i, ty, d)`, first, first+1, first+2),
		[]any{p.ids, p.types, p.docs}
}

// flushEvents inserts the pending events, so that a read of the events
// in this transaction sees them.
func (t *tx) flushEvents() error {
	if len(t.pending.ids) == 0 {
		return nil
	}
	sql, args := t.pending.insert(2)
	t.pending = pendingEvents{}
	_, err := t.exec(sql, append([]any{t.tenant}, args...)...)
	return err
}

// Events reads newest first through the primary key: ids derive from Time,
// so the window, the cursor and the tenant's MaxAge are all bounds on it.
func (t *tx) Events(q storage.EventQuery) ([]storage.Event, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultEventLimit
	}
	if limit > maxEventLimit {
		limit = maxEventLimit
	}
	if !validText(q.Before) {
		return nil, nil // no stored id is anything but hex digits
	}
	upper := q.Before
	if !q.Until.IsZero() {
		if u := eventIDFloor(q.Until); upper == "" || u < upper {
			upper = u
		}
	}
	// Events past the tenant's MaxAge are gone for readers at once,
	// whether or not the pruner has deleted them yet.
	lower := eventIDFloor(time.Now().Add(-t.retention.WithDefaults().MaxAge))
	if !q.Since.IsZero() {
		if l := eventIDFloor(q.Since); l > lower {
			lower = l
		}
	}
	var types []string
	for _, ty := range q.Types {
		if validText(ty) {
			types = append(types, ty)
		}
	}
	if len(q.Types) > 0 && len(types) == 0 {
		return nil, nil
	}
	if err := t.flushEvents(); err != nil {
		return nil, err
	}
	es, err := docs[storage.Event](t, `SELECT doc FROM events
		WHERE tenant = $1 AND id >= $2 AND ($3 = '' OR id < $3) AND ($4::text[] IS NULL OR type = ANY($4))
		ORDER BY id DESC LIMIT $5`, t.tenant, lower, upper, types, limit)
	if err != nil {
		return nil, err
	}
	out := make([]storage.Event, len(es))
	for i, e := range es {
		out[i] = *e
	}
	return out, nil
}
