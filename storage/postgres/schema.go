package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Schema migrations are SQL files embedded in the binary, named
// NNNN_what.sql; NNNN is the schema version the file brings the database to.
// Open applies the ones the database has not seen, in order, each in its own
// transaction with the row that records it, under a session advisory lock so
// that replicas starting together apply each once.
//
// A small runner rather than a migration library: the one rule that matters
// for replicas is that a binary must refuse a schema newer than it knows (an
// old replica left running during a rolling upgrade must not write rows a
// newer schema interprets differently), and libraries such as tern migrate
// down to their own latest version instead when down migrations exist.
// Migrations here are forward only.

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLockKey is the pg_advisory_lock key of schema migrations (an
// arbitrary constant: "portcull" in ASCII).
const migrationLockKey int64 = 0x706f7274_63756c6c

// ErrSchemaTooNew: the database was migrated by a newer Portcullis.
var ErrSchemaTooNew = errors.New("postgres: the database schema is newer than this binary knows")

type migration struct {
	version int
	name    string
	sql     string
}

// migrations lists the embedded migrations in version order.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("postgres: migration %q is not named NNNN_what.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("postgres: migrations skip or repeat version %d", i+1)
		}
	}
	return out, nil
}

// SchemaVersion is the schema version this binary knows (its last migration).
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// migrate brings the database to the binary's schema version, or refuses
// with ErrSchemaTooNew.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	// A session lock: held across the migrations' own transactions, and
	// released by the server if this process dies meanwhile.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
		return fmt.Errorf("postgres: waiting for the migration lock: %w", err)
	}
	defer func() {
		// A failure here leaves the lock to the session's end; the
		// connection is then of no use to the pool either.
		if _, err := conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", migrationLockKey); err != nil {
			conn.Conn().Close(context.Background())
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS portcullis_schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("postgres: creating the migrations table: %w", err)
	}
	var current int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM portcullis_schema_migrations").Scan(&current); err != nil {
		return fmt.Errorf("postgres: reading the schema version: %w", err)
	}
	known := len(ms)
	if current > known {
		return fmt.Errorf("%w: the database is at version %d, this binary knows up to %d; run a Portcullis at least as new as the one that migrated it", ErrSchemaTooNew, current, known)
	}
	for _, m := range ms[current:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO portcullis_schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: applying migration %s: %w", m.name, err)
		}
	}
	return nil
}
