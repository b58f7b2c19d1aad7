package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// stmtRunner is what a tx runs its statements on: a pgx.Tx for Update, a
// readTx for View.
type stmtRunner interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var (
	_ stmtRunner = pgx.Tx(nil)
	_ stmtRunner = (*readTx)(nil)
)

// beginRead starts View's transaction: one REPEATABLE READ snapshot,
// read-only.
const beginRead = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

// readTx is View's transaction on one pooled connection. Its BEGIN is not
// a round trip of its own: it is sent in one pipeline with the first
// statement (a lookup then costs BEGIN+SELECT and ROLLBACK, two round
// trips, not three). The snapshot is taken at the first statement after
// BEGIN either way, so every statement of the View still reads the same
// one. A View whose fn runs no statement sends nothing at all.
type readTx struct {
	conn  *pgxpool.Conn
	begun bool
}

// begin sends BEGIN and sql in one pipeline and returns sql's results;
// the caller closes the batch (batchRows does, with its rows).
func (r *readTx) begin(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	r.begun = true // even if it fails: end rolls back whatever is open
	b := &pgx.Batch{}
	b.Queue(beginRead)
	b.Queue(sql, args...)
	br := r.conn.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return nil, err
	}
	return br, nil
}

// Exec runs sql as Query does, its rows (if any) discarded.
func (r *readTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	rows, err := r.Query(ctx, sql, args...)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	rows.Close()
	return rows.CommandTag(), rows.Err()
}

func (r *readTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if r.begun {
		return r.conn.Query(ctx, sql, args...)
	}
	br, err := r.begin(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (r *readTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := r.Query(ctx, sql, args...)
	return &firstRow{rows: rows, err: err}
}

// end rolls the transaction back, if it began, and returns the
// connection to the pool (which drops it if it is not idle then, e.g.
// when the ROLLBACK failed).
func (r *readTx) end() {
	if r.begun {
		_, _ = r.conn.Exec(context.Background(), "ROLLBACK")
	}
	r.conn.Release()
}

// batchRows are the rows of the statement sent with BEGIN: the batch is
// closed with them (at Close, or when Next has no more rows, as pgx's own
// rows close themselves), freeing the connection for the next statement.
type batchRows struct {
	pgx.Rows
	br  pgx.BatchResults
	err error // the batch's Close
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *batchRows) Close() {
	r.Rows.Close()
	if r.br != nil {
		r.err = r.br.Close()
		r.br = nil
	}
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// firstRow is QueryRow's result over Query's rows, as pgx's own: the
// first row scanned, pgx.ErrNoRows when there is none.
type firstRow struct {
	rows pgx.Rows
	err  error
}

func (r *firstRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}
