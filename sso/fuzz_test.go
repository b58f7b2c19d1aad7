package sso

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/storage/badgerstore"
)

// fuzzIdPCertPEM is a throwaway IdP certificate for the fuzzed SP: no
// fuzzed input can carry a signature by its key.
func fuzzIdPCertPEM(f testing.TB) string {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fuzz idp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		f.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// fuzzService is a SAML Service over a real Badger store, its IdP set by
// hand.
func fuzzService(f *testing.F, cfg TenantConfig) (*Service, http.Handler) {
	st, err := badgerstore.Open(f.TempDir(), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	cfg.Tenant = testTenant
	svc, err := New(context.Background(), cfg, st, zap.NewNop())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = svc.Close() })
	return svc, svc.Handler("/sso", func(*http.Request) string { return "http://gw.example" })
}

func samlFuzzConfig(f *testing.F) TenantConfig {
	return TenantConfig{SAML: &SAMLConfig{
		IDPEntityID:       "https://idp.example/metadata",
		IDPSSOURL:         "https://idp.example/sso",
		IDPSLOURL:         "https://idp.example/slo",
		IDPCertificatePEM: fuzzIdPCertPEM(f),
		EntityID:          "http://gw.example/sso/saml/metadata",
	}}
}

// addSeedFiles adds every file in testdata/<dir> as a seed.
func addSeedFiles(f *testing.F, dir string) {
	files, _ := filepath.Glob(filepath.Join("testdata", dir, "*"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzACSResponse feeds arbitrary SAMLResponse documents, for a sign-in
// that is otherwise in order, to the ACS's verification: nothing unsigned
// by the IdP may get through, and nothing may panic.
func FuzzACSResponse(f *testing.F) {
	f.Add([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="r" Version="2.0"/>`))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>`))
	f.Add([]byte(`<Response><EncryptedAssertion/></Response>`))
	f.Add([]byte("not xml at all"))
	addSeedFiles(f, "saml-responses")
	services := map[bool]*Service{}
	for _, allowEnc := range []bool{false, true} {
		cfg := samlFuzzConfig(f)
		cfg.SAML.AllowEncryptedAssertions = allowEnc
		services[allowEnc], _ = fuzzService(f, cfg)
	}
	flow := &loginFlow{Protocol: protocolSAML, RequestID: "id-fuzz-request", ACSURL: "http://gw.example/sso/saml/acs", ReturnPath: "/"}
	f.Fuzz(func(t *testing.T, doc []byte) {
		for allowEnc, svc := range services {
			ep := &endpoints{s: svc, prefix: "/sso", externalURL: func(*http.Request) string { return "http://gw.example" }}
			form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)}, "RelayState": {strings.Repeat("a", 64)}}
			r := httptest.NewRequest(http.MethodPost, "http://gw.example/saml/acs", strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if err := r.ParseForm(); err != nil {
				t.Fatal(err)
			}
			if id, ref := svc.saml.verifyResponse(ep, r, flow); ref == nil {
				t.Fatalf("accepted an unsigned response (encrypted allowed: %v) for %+v", allowEnc, id)
			}
		}
	})
}

// FuzzACSForm posts arbitrary bodies to the ACS endpoint: a client's
// mistake is a 4xx answer, never a 500, a redirect or a session.
func FuzzACSForm(f *testing.F) {
	for _, s := range []string{
		"", "SAMLResponse=", "SAMLResponse=PHg%2BPC94Pg%3D%3D&RelayState=abc",
		"SAMLart=AAQAAA&RelayState=x", "%zz=1", "SAMLResponse=" + strings.Repeat("A", 4096),
		"RelayState=" + strings.Repeat("0", 64) + "&SAMLResponse=PHg%2B",
	} {
		f.Add(s, "text")
	}
	_, h := fuzzService(f, samlFuzzConfig(f))
	f.Fuzz(func(t *testing.T, body, contentType string) {
		r := httptest.NewRequest(http.MethodPost, "http://gw.example/sso/saml/acs", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if contentType == "multipart" {
			r.Header.Set("Content-Type", "multipart/form-data; boundary=x")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		checkRefused(t, w, body)
	})
}

// FuzzOIDCCallback sends arbitrary callback queries (state, code, error)
// to the OIDC callback of a Service discovered from a real provider.
func FuzzOIDCCallback(f *testing.F) {
	for _, s := range []string{
		"", "state=&code=", "code=abc&state=" + strings.Repeat("a", 64), "error=access_denied&state=x",
		"state=" + strings.Repeat("A", 64), "state=%zz", strings.Repeat("state=1&", 50),
	} {
		f.Add(s)
	}
	op, err := devidp.Start(devidp.Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(op.Close)
	_, h := fuzzService(f, TenantConfig{OIDC: &OIDCConfig{Issuer: op.Issuer, ClientID: "c", ClientSecret: "s"}})
	f.Fuzz(func(t *testing.T, rawQuery string) {
		r := httptest.NewRequest(http.MethodGet, "http://gw.example/sso/oidc/callback", nil)
		r.URL.RawQuery = rawQuery
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		checkRefused(t, w, rawQuery)
	})
}

func checkRefused(t *testing.T, w *httptest.ResponseRecorder, input string) {
	t.Helper()
	if w.Code < 400 || w.Code >= 500 {
		t.Fatalf("status %d for %.200q", w.Code, input)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == DefaultCookieName && c.Value != "" {
			t.Fatalf("session cookie for %.200q", input)
		}
	}
}
