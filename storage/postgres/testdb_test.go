package postgres

import (
	"context"
	"sync"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/portcullis/portcullis/internal/pgtestserver"
)

// The tests run against the server PORTCULLIS_TEST_DATABASE_URL names (a
// postgres:// URL of a role that may create databases; .ci/postgres-start
// starts a throwaway one). Outside CI they skip without it; in CI (CI set)
// they fail, so a broken CI setup cannot pass by skipping.

func serverURL(t testing.TB) string { t.Helper(); return pgtestserver.ServerURL(t) }

// newDatabase creates an empty database of its own for the test, dropped
// when the test ends, and returns its URL.
func newDatabase(t testing.TB) string { t.Helper(); return pgtestserver.NewDatabase(t) }

// databases maps a conformance subtest's dir to its database, so that a
// reopen finds the same data.
var databases sync.Map

func databaseFor(t *testing.T, dir string) string {
	if u, ok := databases.Load(dir); ok {
		return u.(string)
	}
	u := newDatabase(t)
	databases.Store(dir, u)
	return u
}

// openStore opens a store on dbURL, closed when the test ends.
func openStore(t testing.TB, dbURL string, opts Options) *Store {
	t.Helper()
	opts.URL = dbURL
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t)
	}
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
