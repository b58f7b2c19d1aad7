// Package pgtest gives tests outside storage/postgres a PostgreSQL store
// of their own: a fresh database on the server PORTCULLIS_TEST_DATABASE_URL
// names (.ci/postgres-start starts a throwaway one), dropped when the test
// ends. Outside CI the tests skip without a server; in CI (CI set) they
// fail, so a broken CI setup cannot pass by skipping.
package pgtest

import (
	"context"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/portcullis/portcullis/internal/pgtestserver"
	"github.com/portcullis/portcullis/storage/postgres"
)

// URLEnv names the server the tests use.
const URLEnv = pgtestserver.URLEnv

// ServerURL is the server's URL, or skips (fails in CI) without one.
func ServerURL(t testing.TB) string { t.Helper(); return pgtestserver.ServerURL(t) }

// NewDatabase creates an empty database for the test, dropped when the
// test ends, and returns its URL.
func NewDatabase(t testing.TB) string { t.Helper(); return pgtestserver.NewDatabase(t) }

// Open opens a store on dbURL, closed when the test ends.
func Open(t testing.TB, dbURL string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), postgres.Options{URL: dbURL, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
