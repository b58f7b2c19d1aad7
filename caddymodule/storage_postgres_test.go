package caddymodule

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// TestPostgresStorageCaddyfile: `storage postgres <url> { … }` adapts to
// the postgres backend's JSON, and bad options are refused with the reason.
func TestPostgresStorageCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		storage string
		want    string
		wantErr string
	}{
		{
			name:    "env placeholder, no block",
			storage: `storage postgres "{env.PORTCULLIS_DATABASE_URL}"`,
			want:    `{"storage":{"backend":"postgres","url":"{env.PORTCULLIS_DATABASE_URL}"}}`,
		},
		{
			name:    "every option",
			storage: "storage postgres \"postgres://gw@db.internal/portcullis\" {\n pool_size 20\n statement_timeout 5s\n }",
			want:    `{"storage":{"backend":"postgres","pool_size":20,"statement_timeout":5000000000,"url":"postgres://gw@db.internal/portcullis"}}`,
		},
		{
			name:    "poll interval and stale_if_error",
			storage: "storage postgres u {\n poll_interval 500ms\n stale_if_error 1m\n }",
			want:    `{"storage":{"backend":"postgres","poll_interval":500000000,"stale_if_error":60000000000,"url":"u"}}`,
		},
		{
			name:    "stale_if_error 0: never serve stale",
			storage: "storage postgres u {\n stale_if_error 0\n }",
			want:    `{"storage":{"backend":"postgres","stale_if_error":1,"url":"u"}}`,
		},
		{name: "bad poll interval", storage: "storage postgres u {\n poll_interval 0s\n }", wantErr: "poll_interval must be a positive duration"},
		{name: "bad stale_if_error", storage: "storage postgres u {\n stale_if_error -1s\n }", wantErr: "stale_if_error must be a duration"},
		{name: "no url", storage: "storage postgres", wantErr: "needs the database URL"},
		{name: "two urls", storage: "storage postgres a b", wantErr: "wrong argument count"},
		{name: "bad pool size", storage: "storage postgres u {\n pool_size 0\n }", wantErr: "pool_size must be a positive number"},
		{name: "bad timeout", storage: "storage postgres u {\n statement_timeout soon\n }", wantErr: "statement_timeout must be a positive duration"},
		{name: "unknown option", storage: "storage postgres u {\n sslmode disable\n }", wantErr: `unrecognized storage postgres option "sslmode"`},
		{
			name:    "key encryption key",
			storage: "storage postgres u {\n key_encryption_key {env.PORTCULLIS_KEY}\n }",
			want:    `{"storage":{"backend":"postgres","key_encryption_key":"{env.PORTCULLIS_KEY}","url":"u"}}`,
		},
		{name: "key encryption key twice", storage: "storage postgres u {\n key_encryption_key a\n key_encryption_key b\n }", wantErr: "key_encryption_key is set twice"},
		{name: "key encryption key without value", storage: "storage postgres u {\n key_encryption_key\n }", wantErr: "key_encryption_key needs a value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			apps, err := adaptedApps(t, "{\n portcullis {\n "+tc.storage+"\n }\n}\n:0 {\n respond ok\n}\n")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("adapt error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(apps["portcullis"]); got != tc.want {
				t.Fatalf("portcullis app = %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestPostgresStorageProvision: the URL's placeholders are replaced at
// provisioning, and the store key (which is logged) names the database
// without the password.
func TestPostgresStorageProvision(t *testing.T) {
	t.Setenv("PORTCULLIS_TEST_PG_URL", "postgres://gw:s3cret@db.internal:5433/portcullis")
	t.Setenv("PORTCULLIS_TEST_KEK", "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfe")
	t.Setenv("PORTCULLIS_TEST_BAD_KEK", "s3cret-but-short")
	const kek = "{env.PORTCULLIS_TEST_KEK}"
	tests := []struct {
		name    string
		p       PostgresStorage
		wantKey string
		wantErr string
	}{
		{
			name:    "env placeholder",
			p:       PostgresStorage{URL: "{env.PORTCULLIS_TEST_PG_URL}", StatementTimeout: caddy.Duration(time.Second), KeyEncryptionKey: kek},
			wantKey: "postgres:gw@db.internal:5433/portcullis#",
		},
		// A shared database keeps the generated keys sealed: no KEK, no start.
		{name: "no key encryption key", p: PostgresStorage{URL: "{env.PORTCULLIS_TEST_PG_URL}"}, wantErr: "key_encryption_key is required"},
		{name: "unset key encryption key", p: PostgresStorage{URL: "{env.PORTCULLIS_TEST_PG_URL}", KeyEncryptionKey: "{env.PORTCULLIS_TEST_UNSET_KEK}"}, wantErr: "key encryption key is empty"},
		{name: "short key encryption key", p: PostgresStorage{URL: "{env.PORTCULLIS_TEST_PG_URL}", KeyEncryptionKey: "{env.PORTCULLIS_TEST_BAD_KEK}"}, wantErr: "must be 32 random bytes"},
		{name: "unset variable", p: PostgresStorage{URL: "{env.PORTCULLIS_TEST_PG_UNSET}", KeyEncryptionKey: kek}, wantErr: "no database URL"},
		{name: "unparsable", p: PostgresStorage{URL: "postgres://gw:s3cret@db.internal:notaport/x", KeyEncryptionKey: kek}, wantErr: "does not parse"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			err := p.Provision(caddy.Context{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("Provision: %v, want an error containing %q and no password", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k := p.StoreKey(); !strings.HasPrefix(k, tc.wantKey) || strings.Contains(k, "s3cret") {
				t.Fatalf("StoreKey = %q, want prefix %q and no password", k, tc.wantKey)
			}
		})
	}
}
