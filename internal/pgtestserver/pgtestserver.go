// Package pgtestserver owns the throwaway databases tests use on the
// PostgreSQL server PORTCULLIS_TEST_DATABASE_URL names (.ci/postgres-start
// starts one): a fresh database per test, dropped when the test ends.
// Outside CI the tests skip without a server; in CI (CI set) they fail, so
// a broken CI setup cannot pass by skipping. It does not import the store,
// so the store's own tests and every other package's share it.
package pgtestserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// URLEnv names the server the tests use.
const URLEnv = "PORTCULLIS_TEST_DATABASE_URL"

// ServerURL is the server's URL, or skips (fails in CI) without one.
func ServerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(URLEnv)
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: CI must run the PostgreSQL tests (.ci/postgres-start starts a server)", URLEnv)
		}
		t.Skipf("%s is not set; run .ci/postgres-test to start a throwaway PostgreSQL", URLEnv)
	}
	return u
}

// NewDatabase creates an empty database for the test, dropped when the
// test ends, and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	server := ServerURL(t)
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL", URLEnv)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "portcullis_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("connecting to %s: %v", URLEnv, err)
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
