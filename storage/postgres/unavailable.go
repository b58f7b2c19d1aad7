package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/portcullis/portcullis/storage"
)

// unavailable wraps err in storage.ErrUnavailable when it says the database
// could not be reached or answered that it cannot serve, so that SCIM and
// sign-in answer 503 with Retry-After instead of 500. ctx is the caller's:
// a request that gave up (its context ended) is not an outage.
//
// Nothing is written half either way: a transaction that did not reach its
// COMMIT is rolled back by the server when the connection goes, and one
// whose COMMIT was cut off committed whole or not at all.
func unavailable(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || errors.Is(err, storage.ErrUnavailable) {
		return err
	}
	if !connectionFailure(err) {
		return err
	}
	return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
}

// connectionFailure says whether err is a failure to reach or keep the
// database rather than an answer about the data.
func connectionFailure(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"): // connection exception
			return true
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // shutdown, crash, cannot connect now
			return true
		case pe.Code == "57014": // statement_timeout (the caller's context is still live)
			return true
		case pe.Code == "53300": // too many connections
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &ce), errors.As(err, &oe), errors.As(err, &ne):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	case pgconn.Timeout(err), pgconn.SafeToRetry(err):
		return true
	}
	// pgx reports a connection lost mid-transaction with these texts and
	// no typed error.
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "unexpected EOF")
}
