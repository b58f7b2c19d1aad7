package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap/zaptest"
)

// The tests run against the server PORTCULLIS_TEST_DATABASE_URL names (a
// postgres:// URL of a role that may create databases; .ci/postgres-start
// starts a throwaway one). Outside CI they skip without it; in CI (CI set)
// they fail, so a broken CI setup cannot pass by skipping.
const databaseURLEnv = "PORTCULLIS_TEST_DATABASE_URL"

func serverURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(databaseURLEnv)
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: CI must run the PostgreSQL tests (.ci/postgres-start starts a server)", databaseURLEnv)
		}
		t.Skipf("%s is not set; run .ci/postgres-test to start a throwaway PostgreSQL", databaseURLEnv)
	}
	return u
}

// newDatabase creates an empty database of its own for the test, dropped
// when the test ends, and returns its URL.
func newDatabase(t testing.TB) string {
	t.Helper()
	server := serverURL(t)
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL", databaseURLEnv)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "portcullis_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("connecting to %s: %v", databaseURLEnv, err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("CREATE DATABASE: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		admin, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Errorf("connecting to drop %s: %v", name, err)
			return
		}
		defer admin.Close(context.Background())
		if _, err := admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("DROP DATABASE %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

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
