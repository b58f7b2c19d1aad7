package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/portcullis/portcullis/storage"
)

// TestUnavailable: failures to reach the database become
// storage.ErrUnavailable (503 upstream); answers about the data, and a
// caller that gave up, do not.
func TestUnavailable(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{name: "connection refused", err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, want: true},
		{name: "reset mid-transaction", err: fmt.Errorf("postgres: begin: %w", syscall.ECONNRESET), want: true},
		{name: "unexpected EOF", err: io.ErrUnexpectedEOF, want: true},
		{name: "admin shutdown", err: &pgconn.PgError{Code: "57P01"}, want: true},
		{name: "cannot connect now", err: &pgconn.PgError{Code: "57P03"}, want: true},
		{name: "connection exception", err: &pgconn.PgError{Code: "08006"}, want: true},
		{name: "statement timeout", err: &pgconn.PgError{Code: "57014"}, want: true},
		{name: "unique violation", err: &pgconn.PgError{Code: "23505"}},
		{name: "serialization failure", err: &pgconn.PgError{Code: "40001"}},
		{name: "not found", err: storage.ErrNotFound},
		{name: "the caller gave up", ctx: cancelled, err: &net.OpError{Op: "read", Err: syscall.ECONNRESET}},
		{name: "nil", err: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			got := unavailable(ctx, tc.err)
			if errors.Is(got, storage.ErrUnavailable) != tc.want {
				t.Fatalf("unavailable(%v) = %v, want ErrUnavailable: %v", tc.err, got, tc.want)
			}
			if !errors.Is(got, tc.err) && !tc.want {
				t.Fatalf("unavailable(%v) = %v: lost the error", tc.err, got)
			}
		})
	}
}
