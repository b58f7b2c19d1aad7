package storagetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// testConcurrentCreateOnce pins down what the gateway's generated keys
// (SAML SP key, assertion key, sign-in flow key) rely on when several
// replicas start together: concurrent Updates that each read a record and,
// finding none, put their own random value, end with one stored value,
// and every caller ends up using it. The losers' fn runs again (a conflict
// is retried) and reads the winner's value; a caller that kept its own
// candidate instead would differ here.
func testConcurrentCreateOnce(t *testing.T, h *harness) {
	const creators = 8
	const kind, key = "test-key", "default"
	used := make([][]byte, creators)
	errs := make([]error, creators)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range creators {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = h.s.Update(t.Context(), tenant, func(tx storage.Tx) error {
				v, err := tx.GetRecord(kind, key)
				if err == nil {
					used[i] = v
					return nil
				}
				if !errors.Is(err, storage.ErrNotFound) {
					return err
				}
				fresh := make([]byte, 32)
				if _, err := rand.Read(fresh); err != nil {
					return err
				}
				used[i] = fresh
				return tx.PutRecord(kind, key, fresh, 0)
			})
		}()
	}
	close(start)
	wg.Wait()
	var stored []byte
	h.view(tenant, func(tx storage.ReadTx) error {
		var err error
		stored, err = tx.GetRecord(kind, key)
		return err
	})
	for i := range creators {
		if errs[i] != nil {
			t.Fatalf("creator %d: %v", i, errs[i])
		}
		if !bytes.Equal(used[i], stored) {
			t.Errorf("creator %d uses %x, the store holds %x", i, used[i], stored)
		}
	}
}

// testLease: a store that gives leases (storage.Leaser) gives a free one,
// closes Lost on Release, and gives it again after.
func testLease(t *testing.T, h *harness) {
	leaser, ok := h.s.(storage.Leaser)
	if !ok {
		t.Skip("the store gives no leases")
	}
	for range 2 {
		l, held, err := leaser.TryLease(t.Context(), "storagetest")
		if err != nil || !held {
			t.Fatalf("TryLease of a free lease = %v, %v", held, err)
		}
		select {
		case <-l.Lost():
			t.Fatal("a held lease is already lost")
		default:
		}
		l.Release()
		l.Release()
		<-l.Lost()
	}
}
