package keyring

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
	"github.com/portcullis/portcullis/storage/postgres/pgtest"
)

func newKEK(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, KEKSize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKEK(t *testing.T) {
	kek := newKEK(t)
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"hex", hex.EncodeToString(kek), true},
		{"hex upper with newline", strings.ToUpper(hex.EncodeToString(kek)) + "\n", true},
		{"base64", base64.StdEncoding.EncodeToString(kek), true},
		{"base64 raw url", base64.RawURLEncoding.EncodeToString(kek), true},
		{"empty", "", false},
		{"too short", base64.StdEncoding.EncodeToString(kek[:16]), false},
		{"too long", hex.EncodeToString(append(kek, 1)), false},
		{"a passphrase", "correct horse battery staple", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKEK(tc.in)
			if !tc.ok {
				if err == nil {
					t.Fatalf("ParseKEK accepted %q", tc.in)
				}
				if tc.in != "" && strings.Contains(err.Error(), tc.in) {
					t.Errorf("the error quotes the secret: %v", err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, kek) {
				t.Fatalf("ParseKEK = %x, %v", got, err)
			}
		})
	}
}

func openBadger(t *testing.T) storage.Store {
	t.Helper()
	st, err := badgerstore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func rawRecord(t *testing.T, st storage.Store, s Slot) []byte {
	t.Helper()
	var v []byte
	err := st.View(t.Context(), s.Tenant, func(tx storage.ReadTx) error {
		var err error
		v, err = tx.GetRecord(s.Kind, s.Key)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func randomKey() ([]byte, error) {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	return b, err
}

// TestSealing follows one key from a gateway without a KEK to one with it:
// the plaintext record is sealed on the first start with the KEK, stays
// the same key, and is refused without the KEK, with another KEK, and when
// copied to another tenant's slot.
func TestSealing(t *testing.T) {
	st := openBadger(t)
	slot := Slot{Tenant: "acme", Kind: "test-key", Key: "default"}
	kek, otherKEK := newKEK(t), newKEK(t)
	load := func(slot Slot, kek []byte) (Loaded, error) {
		return LoadOrCreate(t.Context(), st, Spec{Slot: slot, KEK: kek, Create: randomKey})
	}

	first, err := load(slot, nil)
	if err != nil || !first.Created {
		t.Fatalf("first load: %+v, %v", first, err)
	}
	if raw := rawRecord(t, st, slot); !bytes.Equal(raw, first.Value) {
		t.Fatalf("without a KEK the record is the key itself")
	}
	sealed, err := load(slot, kek)
	if err != nil || !sealed.Resealed || sealed.Created || !bytes.Equal(sealed.Value, first.Value) {
		t.Fatalf("first load with a KEK: %+v, %v; want the same key, resealed", sealed, err)
	}
	raw := rawRecord(t, st, slot)
	if !isSealed(raw) || bytes.Contains(raw, first.Value) {
		t.Fatalf("the stored record is not sealed: %x", raw)
	}
	again, err := load(slot, kek)
	if err != nil || again.Resealed || again.Created || !bytes.Equal(again.Value, first.Value) {
		t.Fatalf("second load with the KEK: %+v, %v", again, err)
	}

	// The sealed record copied into another tenant's slot.
	other := Slot{Tenant: "globex", Kind: slot.Kind, Key: slot.Key}
	if err := st.Update(t.Context(), other.Tenant, func(tx storage.Tx) error {
		return tx.PutRecord(other.Kind, other.Key, raw, 0)
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		slot Slot
		kek  []byte
		want error
	}{
		{"no KEK", slot, nil, ErrNoKEK},
		{"another KEK", slot, otherKEK, ErrWrongKEK},
		{"copied to another tenant", other, kek, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := load(tc.slot, tc.kek)
			if err == nil {
				t.Fatalf("loaded %x", got.Value)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	if !bytes.Equal(rawRecord(t, st, slot), raw) {
		t.Error("a refused load changed the stored record")
	}
	if _, err := LoadOrCreate(t.Context(), st, Spec{Slot: slot, KEK: kek[:16], Create: randomKey}); err == nil {
		t.Error("a 16-byte KEK was accepted")
	}
}

// TestConcurrentFirstStart starts several creators at once on each
// backend, with and without a KEK: all end with the one stored key.
func TestConcurrentFirstStart(t *testing.T) {
	for _, backend := range []struct {
		name string
		open func(t *testing.T) storage.Store
	}{
		{"badger", openBadger},
		{"postgres", func(t *testing.T) storage.Store { return pgtest.Open(t, pgtest.NewDatabase(t)) }},
	} {
		for _, sealed := range []bool{false, true} {
			name := backend.name + "/plaintext"
			if sealed {
				name = backend.name + "/sealed"
			}
			t.Run(name, func(t *testing.T) {
				st := backend.open(t)
				var kek []byte
				if sealed {
					kek = newKEK(t)
				}
				slot := Slot{Tenant: "acme", Kind: "test-key", Key: "default"}
				const replicas = 6
				got := make([]Loaded, replicas)
				errs := make([]error, replicas)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range replicas {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						got[i], errs[i] = LoadOrCreate(t.Context(), st, Spec{Slot: slot, KEK: kek, Create: randomKey})
					}()
				}
				close(start)
				wg.Wait()
				created := 0
				for i := range replicas {
					if errs[i] != nil {
						t.Fatalf("replica %d: %v", i, errs[i])
					}
					if !bytes.Equal(got[i].Value, got[0].Value) {
						t.Errorf("replica %d uses another key", i)
					}
					if got[i].Created {
						created++
					}
				}
				if created != 1 {
					t.Errorf("%d replicas say they created the key, want 1", created)
				}
				if raw := rawRecord(t, st, slot); isSealed(raw) != sealed {
					t.Errorf("stored record sealed = %v, want %v", isSealed(raw), sealed)
				}
			})
		}
	}
}
