package sso

import (
	"bytes"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
	"github.com/portcullis/portcullis/storage/keyring"
	"github.com/portcullis/portcullis/storage/postgres/pgtest"
)

// keyTestConfig is a SAML tenant whose IdP is set by hand: starting it
// reaches no network, only the store (flow key, generated SP key).
func keyTestConfig(t *testing.T, kek []byte) TenantConfig {
	cfg := TenantConfig{Tenant: testTenant, KeyEncryptionKey: kek, SAML: &SAMLConfig{
		IDPEntityID:       "https://idp.example/metadata",
		IDPSSOURL:         "https://idp.example/sso",
		IDPCertificatePEM: fuzzIdPCertPEM(t),
		EntityID:          "http://gw.example/sso/saml/metadata",
	}}
	return cfg
}

func testKEK(t *testing.T) []byte {
	k := make([]byte, keyring.KEKSize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// startService starts a Service on st, closed when the test ends.
func startService(t *testing.T, cfg TenantConfig, st storage.Store) (*Service, error) {
	svc, err := New(t.Context(), cfg, st, zap.NewNop())
	if err == nil {
		t.Cleanup(func() { _ = svc.Close() })
	}
	return svc, err
}

// flowCrosses says whether a sign-in flow started on a is accepted by b:
// they share the flow key.
func flowCrosses(t *testing.T, a, b *Service) bool {
	t.Helper()
	w := httptest.NewRecorder()
	id, err := a.startFlow(w, httptest.NewRequest(http.MethodGet, "/sso/login", nil), "/sso",
		&loginFlow{Protocol: protocolSAML, ReturnPath: "/x"}, false)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/sso/saml/acs", nil)
	r.AddCookie(w.Result().Cookies()[0])
	_, err = b.consumeFlow(httptest.NewRecorder(), r, "/sso", id)
	return err == nil
}

// TestReplicasStartTogether starts several Services at once on one
// PostgreSQL database, as replicas behind a load balancer do on their
// first start: they end with one SP key and one flow key, sealed at rest.
func TestReplicasStartTogether(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	kek := testKEK(t)
	cfg := keyTestConfig(t, kek)
	const replicas = 4
	// Each replica its own store (its own pool), as separate processes.
	stores := make([]storage.Store, replicas)
	for i := range stores {
		stores[i] = pgtest.Open(t, dbURL)
	}
	st := stores[0]
	svcs := make([]*Service, replicas)
	errs := make([]error, replicas)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			svcs[i], errs[i] = New(t.Context(), cfg, stores[i], zap.NewNop())
		}()
	}
	close(start)
	wg.Wait()
	for _, svc := range svcs {
		if svc != nil {
			t.Cleanup(func() { _ = svc.Close() })
		}
	}
	for i := range replicas {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		if !svcs[i].saml.cert.Equal(svcs[0].saml.cert) {
			t.Errorf("replica %d has another SP certificate", i)
		}
		if !flowCrosses(t, svcs[i], svcs[(i+1)%replicas]) {
			t.Errorf("a flow started on replica %d is refused by replica %d", i, (i+1)%replicas)
		}
	}
	for _, kind := range []string{recordSPKey, recordFlowKey} {
		var raw []byte
		if err := st.View(t.Context(), testTenant, func(tx storage.ReadTx) error {
			var err error
			raw, err = tx.GetRecord(kind, "default")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte("PRIVATE KEY")) || !bytes.HasPrefix(raw, []byte("portcullis/kek1")) {
			t.Errorf("%s is not sealed at rest", kind)
		}
	}
}

// TestKeysResealedWithKEK: a gateway that ran without a KEK left its keys
// in plaintext; the first start with one seals them and keeps using them;
// a start without it then fails with a clear error.
func TestKeysResealedWithKEK(t *testing.T) {
	st, err := badgerstore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	plainCfg := keyTestConfig(t, nil)
	plain, err := startService(t, plainCfg, st)
	if err != nil {
		t.Fatal(err)
	}
	sealedCfg := plainCfg
	sealedCfg.KeyEncryptionKey = testKEK(t)
	sealed, err := startService(t, sealedCfg, st)
	if err != nil {
		t.Fatal(err)
	}
	if !sealed.saml.cert.Equal(plain.saml.cert) {
		t.Error("sealing changed the SP key")
	}
	if !flowCrosses(t, plain, sealed) {
		t.Error("sealing changed the flow key")
	}
	var raw []byte
	_ = st.View(t.Context(), testTenant, func(tx storage.ReadTx) error {
		raw, err = tx.GetRecord(recordSPKey, spKeyRecordKey)
		return err
	})
	if bytes.Contains(raw, []byte("PRIVATE KEY")) {
		t.Error("the SP key is still in plaintext")
	}
	if _, err := startService(t, plainCfg, st); err == nil {
		t.Error("a start without the KEK opened sealed keys")
	} else if !bytes.Contains([]byte(err.Error()), []byte("key_encryption_key")) {
		t.Errorf("unclear error without the KEK: %v", err)
	}
}
