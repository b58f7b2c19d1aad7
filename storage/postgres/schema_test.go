package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestMigrationsOnceUnderConcurrentOpens: replicas starting together on an
// empty database apply each migration once and all open.
func TestMigrationsOnceUnderConcurrentOpens(t *testing.T) {
	db := newDatabase(t)
	const replicas = 4
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i := range replicas {
		wg.Go(func() {
			s, err := Open(context.Background(), Options{URL: db})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: Open: %v", i, err)
		}
	}
	conn := connect(t, db)
	var n, max int
	if err := conn.QueryRow(context.Background(), "SELECT count(*), max(version) FROM portcullis_schema_migrations").Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n != SchemaVersion() || max != SchemaVersion() {
		t.Fatalf("migrations table has %d rows up to version %d, want %d", n, max, SchemaVersion())
	}
}

// TestRefusesNewerSchema: a binary refuses a database a newer one migrated,
// saying which versions, and writes nothing.
func TestRefusesNewerSchema(t *testing.T) {
	db := newDatabase(t)
	openStore(t, db, Options{}).Close()
	conn := connect(t, db)
	future := SchemaVersion() + 1
	if _, err := conn.Exec(context.Background(), "INSERT INTO portcullis_schema_migrations (version, name) VALUES ($1, 'future.sql')", future); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), Options{URL: db})
	if err == nil {
		s.Close()
		t.Fatal("Open of a database with a newer schema succeeded")
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open: %v, want ErrSchemaTooNew", err)
	}
	for _, want := range []string{fmt.Sprintf("version %d", future), fmt.Sprintf("up to %d", SchemaVersion())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestSynchronousCommit: a database configured with synchronous_commit
// off still gets durable commits from the store, and a URL asking for it
// off is refused.
func TestSynchronousCommit(t *testing.T) {
	db := newDatabase(t)
	cfg, err := pgx.ParseConfig(db)
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, db)
	if _, err := conn.Exec(context.Background(), "ALTER DATABASE "+cfg.Database+" SET synchronous_commit = off"); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, db, Options{})
	var sc string
	if err := s.pool.QueryRow(context.Background(), "SHOW synchronous_commit").Scan(&sc); err != nil {
		t.Fatal(err)
	}
	if sc != "on" {
		t.Fatalf("the store's sessions run with synchronous_commit = %s, want on", sc)
	}
	sep := "?"
	if strings.Contains(db, "?") {
		sep = "&"
	}
	_, err = Open(context.Background(), Options{URL: db + sep + "synchronous_commit=off"})
	if err == nil || !strings.Contains(err.Error(), "synchronous_commit") {
		t.Fatalf("Open with synchronous_commit=off in the URL: %v, want a refusal", err)
	}
}

func connect(t *testing.T, db string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
