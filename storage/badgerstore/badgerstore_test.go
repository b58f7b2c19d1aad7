package badgerstore_test

import (
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
	"github.com/portcullis/portcullis/storage/storagetest"
)

// TestConformance runs the shared storage suite on a real Badger database.
func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, dir string) storage.Store {
		s, err := badgerstore.Open(dir, zaptest.NewLogger(t))
		if err != nil {
			t.Fatalf("Open(%s): %v", dir, err)
		}
		return s
	})
}
