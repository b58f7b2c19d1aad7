package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// TestViewEndsItsTransactionAfterReturning: a View returns before its
// ROLLBACK is done (readtx.go), and still every connection goes back to
// the pool idle and is used again: with a pool of one, a write right
// after each View gets the connection, and the pool never has to replace
// one (pgxpool destroys a connection released inside a transaction; the
// control shows that this count sees that). Close, right after a View,
// waits for its ROLLBACK.
func TestViewEndsItsTransactionAfterReturning(t *testing.T) {
	db := newDatabase(t)
	s := openStore(t, db, Options{PoolSize: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 20 {
		err := s.View(ctx, "acme", func(tx storage.ReadTx) error {
			_, err := tx.CountUsers()
			return err
		})
		if err != nil {
			t.Fatalf("View %d: %v", i, err)
		}
		id := fmt.Sprintf("u%02d", i)
		if err := s.Update(ctx, "acme", func(tx storage.Tx) error {
			return tx.PutUser(&storage.User{ID: id, UserName: id})
		}); err != nil {
			t.Fatalf("Update after View %d: %v", i, err)
		}
	}
	if n := s.pool.Stat().NewConnsCount(); n != 1 {
		t.Errorf("the pool opened %d connections, want 1: a View released its connection inside its transaction", n)
	}

	// Control: a connection released inside a transaction is replaced,
	// and the count above sees it.
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, beginRead); err != nil {
		t.Fatal(err)
	}
	conn.Release()
	if err := s.View(ctx, "acme", func(tx storage.ReadTx) error {
		_, err := tx.CountUsers()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n := s.pool.Stat().NewConnsCount(); n != 2 {
		t.Errorf("control: after a release inside a transaction the pool opened %d connections, want 2", n)
	}

	// Close right after a View waits for the View's ROLLBACK.
	c := openStore(t, db, Options{PoolSize: 1})
	if err := c.View(ctx, "acme", func(tx storage.ReadTx) error {
		_, err := tx.CountUsers()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Close did not return after a View")
	}
	if n := c.pool.Stat().AcquiredConns(); n != 0 {
		t.Errorf("%d connections still acquired after Close", n)
	}
}
