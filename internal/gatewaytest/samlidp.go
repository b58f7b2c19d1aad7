package gatewaytest

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/crewjam/saml/samlidp"

	"github.com/portcullis/portcullis/internal/testpki"
)

// SAMLIdPCommonName is the subject of the IdP's self-signed certificate.
const SAMLIdPCommonName = "gatewaytest SAML IdP"

// SAMLIdP is a real SAML 2.0 identity provider (crewjam's samlidp) on
// 127.0.0.1, with a login form for its users.
type SAMLIdP struct {
	t      testing.TB
	server *httptest.Server
	// sessions sets the IdP's session end in its assertions (see
	// SetSessionLifetime).
	sessions *sessionEndMaker
}

// StartSAMLIdP runs an IdP with a fresh signing key until the test ends.
func StartSAMLIdP(t testing.TB) *SAMLIdP {
	t.Helper()
	key, cert := testpki.SigningKeyPair(t, SAMLIdPCommonName)

	// The IdP needs its own URL before it can be built, and the server
	// must exist to know it: requests wait until the IdP is set.
	var (
		ready   sync.WaitGroup
		handler http.Handler
	)
	ready.Add(1)
	i := &SAMLIdP{t: t, sessions: &sessionEndMaker{}}
	i.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ready.Wait()
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(i.server.Close)
	u, err := url.Parse(i.server.URL)
	if err != nil {
		t.Fatal(err)
	}
	idp, err := samlidp.New(samlidp.Options{
		URL:         *u,
		Key:         key,
		Certificate: cert,
		Store:       &samlidp.MemoryStore{},
		Logger:      log.New(io.Discard, "", 0),
	})
	if err != nil {
		t.Fatalf("samlidp.New: %v", err)
	}
	idp.IDP.AssertionMaker = i.sessions
	handler = idp
	ready.Done()
	return i
}

// MetadataURL is where the IdP publishes its metadata.
func (i *SAMLIdP) MetadataURL() string { return i.server.URL + "/metadata" }

// AddUser creates a user who signs in at the login form with password.
func (i *SAMLIdP) AddUser(name, password, email, commonName string, groups []string) {
	i.t.Helper()
	body, err := json.Marshal(map[string]any{"name": name, "password": password, "email": email, "common_name": commonName, "groups": groups})
	if err != nil {
		i.t.Fatal(err)
	}
	i.put("/users/"+name, body)
}

// RegisterSP fetches a service provider's metadata and registers it, as an
// IdP admin pointing the IdP at the SP's metadata URL would.
func (i *SAMLIdP) RegisterSP(id, metadataURL string) {
	i.t.Helper()
	resp, err := http.Get(metadataURL)
	if err != nil {
		i.t.Fatal(err)
	}
	md, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		i.t.Fatalf("SP metadata from %s: %d %v\n%s", metadataURL, resp.StatusCode, err, md)
	}
	i.put("/services/"+id, md)
}

func (i *SAMLIdP) put(path string, body []byte) {
	i.t.Helper()
	req, err := http.NewRequest(http.MethodPut, i.server.URL+path, bytes.NewReader(body))
	if err != nil {
		i.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		i.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		i.t.Fatalf("PUT %s at the SAML IdP: %d", path, resp.StatusCode)
	}
}
