package postgres

import (
	"context"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/storagetest"
)

// TestConformance runs the shared storage suite on a real PostgreSQL
// database, one database per subtest; a reopen opens a new Store on the
// same database.
func TestConformance(t *testing.T) {
	serverURL(t)
	storagetest.Run(t, func(t *testing.T, dir string) storage.Store {
		s, err := Open(context.Background(), Options{URL: databaseFor(t, dir), Logger: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}
