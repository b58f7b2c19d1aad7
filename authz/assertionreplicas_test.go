package authz

import (
	"bytes"
	"crypto/rand"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
	"github.com/portcullis/portcullis/storage/keyring"
	"github.com/portcullis/portcullis/storage/postgres/pgtest"
)

func assertionKEK(t *testing.T) []byte {
	k := make([]byte, keyring.KEKSize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func storedAssertionKey(t *testing.T, st storage.Store, tenant string) []byte {
	t.Helper()
	var raw []byte
	if err := st.View(t.Context(), tenant, func(tx storage.ReadTx) error {
		var err error
		raw, err = tx.GetRecord(assertionKeyKind, assertionKeyName)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestAssertionSignersStartTogether starts several signers at once on one
// PostgreSQL database, each on a store of its own as separate replicas
// have: they end with one key (one kid), sealed at rest.
func TestAssertionSignersStartTogether(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	kek := assertionKEK(t)
	const replicas = 4
	stores := make([]storage.Store, replicas)
	for i := range stores {
		stores[i] = pgtest.Open(t, dbURL)
	}
	signers := make([]*AssertionSigner, replicas)
	errs := make([]error, replicas)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			signers[i], errs[i] = NewAssertionSigner(t.Context(), AssertionConfig{
				Store: stores[i], Tenant: "acme", Issuer: "https://gw.example/portcullis/acme", KeyEncryptionKey: kek})
		}()
	}
	close(start)
	wg.Wait()
	for i := range replicas {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		if signers[i].KeyID() != signers[0].KeyID() {
			t.Errorf("replica %d signs with kid %s, replica 0 with %s", i, signers[i].KeyID(), signers[0].KeyID())
		}
	}
	if raw := storedAssertionKey(t, stores[0], "acme"); !bytes.HasPrefix(raw, []byte("portcullis/kek1")) {
		t.Error("the assertion key is not sealed at rest")
	}
}

// TestAssertionKeyResealed: a plaintext key left by a gateway without a
// KEK is sealed on the first start with one, and stays the same key.
func TestAssertionKeyResealed(t *testing.T) {
	st, err := badgerstore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := AssertionConfig{Store: st, Tenant: "acme", Issuer: "urn:portcullis:acme"}
	plain, err := NewAssertionSigner(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.KeyEncryptionKey = assertionKEK(t)
	sealed, err := NewAssertionSigner(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sealed.KeyID() != plain.KeyID() {
		t.Error("sealing changed the signing key")
	}
	if raw := storedAssertionKey(t, st, "acme"); !bytes.HasPrefix(raw, []byte("portcullis/kek1")) {
		t.Error("the assertion key is still in plaintext")
	}
	cfg.KeyEncryptionKey = nil
	if _, err := NewAssertionSigner(t.Context(), cfg); err == nil {
		t.Error("a start without the KEK opened the sealed key")
	}
}
