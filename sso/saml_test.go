package sso

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlidp"

	"github.com/portcullis/portcullis/internal/testpki"
	"github.com/portcullis/portcullis/storage"
)

// samlIdP is a crewjam samlidp server on 127.0.0.1 whose assertions a test
// can tamper with before the IdP signs them, and whose signing key a test
// can swap for one the SP does not trust.
type samlIdP struct {
	t      *testing.T
	server *httptest.Server
	idp    *samlidp.Server
	signer *switchSigner

	mu       sync.Mutex
	tamper   func(req *saml.IdpAuthnRequest, a *saml.Assertion)
	unsigned bool // strip every signature from the Response
}

func startSAMLIdP(t *testing.T) *samlIdP {
	t.Helper()
	key, cert := testpki.SigningKeyPair(t, "test idp")
	i := &samlIdP{t: t, signer: &switchSigner{key: key}}
	var handler http.Handler
	var ready sync.WaitGroup
	ready.Add(1)
	i.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ready.Wait()
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(i.server.Close)
	u, _ := url.Parse(i.server.URL)
	idp, err := samlidp.New(samlidp.Options{
		URL:         *u,
		Key:         key,
		Signer:      i.signer,
		Certificate: cert,
		Store:       &samlidp.MemoryStore{},
		Logger:      log.New(io.Discard, "", 0),
	})
	if err != nil {
		t.Fatalf("samlidp.New: %v", err)
	}
	idp.IDP.AssertionMaker = tamperingMaker{i}
	idp.IDP.ResponseWriter = strippingWriter{i}
	i.idp = idp
	handler = idp
	ready.Done()
	return i
}

func (i *samlIdP) metadataURL() string { return i.server.URL + "/metadata" }

func (i *samlIdP) setTamper(f func(req *saml.IdpAuthnRequest, a *saml.Assertion)) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.tamper = f
}

// addUser creates a user through the IdP's admin API.
func (i *samlIdP) addUser(name, password, email, commonName string, groups []string) {
	i.t.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "password": password, "email": email, "common_name": commonName, "groups": groups})
	i.put("/users/"+name, body)
}

// registerSP gives the IdP the SP's metadata, as an IdP admin would.
func (i *samlIdP) registerSP(metadataURL string) {
	i.t.Helper()
	i.registerSPWith(http.DefaultClient, metadataURL)
}

// registerSPWith fetches the metadata with c (one that trusts a TLS
// gateway's certificate).
func (i *samlIdP) registerSPWith(c *http.Client, metadataURL string) {
	i.t.Helper()
	resp, err := c.Get(metadataURL)
	if err != nil {
		i.t.Fatal(err)
	}
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		i.t.Fatalf("SP metadata: %d %s", resp.StatusCode, md)
	}
	i.put("/services/gateway", md)
}

func (i *samlIdP) put(path string, body []byte) {
	i.t.Helper()
	req, _ := http.NewRequest(http.MethodPut, i.server.URL+path, bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		i.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		i.t.Fatalf("PUT %s: %d", path, resp.StatusCode)
	}
}

type tamperingMaker struct{ i *samlIdP }

func (m tamperingMaker) MakeAssertion(req *saml.IdpAuthnRequest, session *saml.Session) error {
	if err := (saml.DefaultAssertionMaker{}).MakeAssertion(req, session); err != nil {
		return err
	}
	m.i.mu.Lock()
	f := m.i.tamper
	m.i.mu.Unlock()
	if f != nil {
		f(req, req.Assertion)
	}
	return nil
}

// strippingWriter posts the IdP's Response, without any signature when the
// test asks for that.
type strippingWriter struct{ i *samlIdP }

func (s strippingWriter) WriteResponse(w http.ResponseWriter, req *saml.IdpAuthnRequest) error {
	s.i.mu.Lock()
	unsigned := s.i.unsigned
	s.i.mu.Unlock()
	if unsigned && req.Assertion != nil {
		if err := req.MakeResponse(); err != nil {
			return err
		}
		var strip func(e *etree.Element)
		strip = func(e *etree.Element) {
			for _, c := range e.ChildElements() {
				if c.Tag == "Signature" {
					e.RemoveChild(c)
					continue
				}
				strip(c)
			}
		}
		strip(req.ResponseEl)
	}
	return req.WriteResponse(w)
}

// switchSigner signs with whichever key it currently holds.
type switchSigner struct {
	mu  sync.Mutex
	key *rsa.PrivateKey
}

func (s *switchSigner) use(k *rsa.PrivateKey) { s.mu.Lock(); s.key = k; s.mu.Unlock() }
func (s *switchSigner) current() *rsa.PrivateKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key
}
func (s *switchSigner) Public() crypto.PublicKey { return s.current().Public() }
func (s *switchSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.current().Sign(r, digest, opts)
}

// samlSetup runs an IdP with users and a gateway registered with it.
func samlSetup(t *testing.T, mutate func(*TenantConfig)) (*samlIdP, *gateway) {
	t.Helper()
	idp := startSAMLIdPWithUsers(t)
	return idp, samlGateway(t, idp, mutate)
}

func startSAMLIdPWithUsers(t *testing.T) *samlIdP {
	t.Helper()
	idp := startSAMLIdP(t)
	idp.addUser("alice", "alice-pw", "alice@acme.test", "Alice Example", []string{"engineering", "admins"})
	idp.addUser("eve", "eve-pw", "eve@evil.test", "Eve", nil)
	idp.addUser("carol", "carol-pw", "carol@acme.test", "Carol", nil)
	return idp
}

// samlGateway starts a gateway signing in at idp and registers it there.
func samlGateway(t *testing.T, idp *samlIdP, mutate func(*TenantConfig)) *gateway {
	t.Helper()
	g := newGateway(t)
	cfg := TenantConfig{SAML: &SAMLConfig{
		IDPMetadataURL: idp.metadataURL(),
		EntityID:       g.URL() + "/sso/saml/metadata",
	}}
	if mutate != nil {
		mutate(&cfg)
	}
	g.start(cfg)
	idp.registerSP(g.URL() + "/sso" + PathSAMLMetadata)
	return g
}

// samlSignIn goes from a protected page through the IdP's login form to the
// ACS, and returns the ACS form the IdP's page posted and the final page.
func samlSignIn(t *testing.T, b *browser, g *gateway, user, password, path string) (url.Values, page) {
	t.Helper()
	return samlSignInTo(t, b, g, user, password, path, "")
}

// samlSignInTo is samlSignIn, posting the IdP's form to acs instead of its
// action when acs is not "".
func samlSignInTo(t *testing.T, b *browser, g *gateway, user, password, path, acs string) (url.Values, page) {
	t.Helper()
	p := b.get(g.URL() + path)
	if !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("expected the IdP login form at %s, got %d:\n%s", p.url, p.status, p.body)
	}
	p = b.submitForm(p, map[string]string{"user": user, "password": password})
	_, acsForm := parseForm(t, p.body)
	if acsForm.Get("SAMLResponse") == "" {
		t.Fatalf("expected the IdP's auto-post form, got %d:\n%s", p.status, p.body)
	}
	if acs != "" {
		return acsForm, b.post(acs, acsForm)
	}
	return acsForm, b.submitForm(p, nil)
}

func TestSAMLSignInProvisionedUser(t *testing.T) {
	_, g := samlSetup(t, nil)
	alice := &storage.User{UserName: "alice.example", Emails: []string{"Alice@acme.test"}, Active: true}
	g.putUser(alice)

	b := newBrowser(t)
	_, p := samlSignIn(t, b, g, "alice", "alice-pw", "/wiki/page?id=7")
	if p.status != http.StatusOK || p.url.Path != "/wiki/page" {
		t.Fatalf("landed on %s (%d): %s", p.url, p.status, p.body)
	}
	mustContain(t, "app page", p.body, "app page /wiki/page?id=7 for alice.example")
	sessions := g.sessionsOf(alice.ID)
	if len(sessions) != 1 {
		t.Fatalf("sessions: %+v", sessions)
	}
	s := sessions[0]
	if s.Protocol != "saml" || s.NameID != "alice@acme.test" || s.NameIDFormat != string(saml.EmailAddressNameIDFormat) || s.SessionIndex == "" {
		t.Errorf("session lacks what single logout needs: %+v", s)
	}
	if evs := g.events(storage.EventSignIn); len(evs) != 1 || evs[0].ResourceID != alice.ID {
		t.Errorf("signin.succeeded events: %+v", evs)
	}
	// The SAML flow cookie went to the ACS only and is gone now.
	for _, c := range b.setCookies() {
		if strings.Contains(c.Name, "_flow_") && c.MaxAge > 0 && c.Path != "/sso/" {
			t.Errorf("flow cookie path %q", c.Path)
		}
	}
	for _, c := range b.jar.Cookies(mustURL(g.URL() + "/sso/")) {
		if strings.Contains(c.Name, "_flow_") {
			t.Errorf("flow cookie left behind: %s", c.Name)
		}
	}
}

func TestSAMLJustInTimeUserAndGroups(t *testing.T) {
	_, g := samlSetup(t, func(c *TenantConfig) { c.JIT = true })
	_, p := samlSignIn(t, newBrowser(t), g, "alice", "alice-pw", "/")
	// No userName attribute the IdP sends is preferred over the email
	// NameID, so the JIT user is named by it.
	mustContain(t, "app page", p.body, "for alice@acme.test groups=admins,engineering")
	u := g.userByName("alice@acme.test")
	if u.Source != storage.SourceJIT || u.DisplayName != "Alice Example" {
		t.Errorf("jit user: %+v", u)
	}
	if len(g.events(storage.EventJITUserCreated)) != 1 {
		t.Error("no user.jit_created event")
	}
}

func TestSAMLMetadata(t *testing.T) {
	for _, allowEnc := range []bool{false, true} {
		_, g := samlSetup(t, func(c *TenantConfig) { c.SAML.AllowEncryptedAssertions = allowEnc })
		resp, err := http.Get(g.URL() + "/sso" + PathSAMLMetadata)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var md saml.EntityDescriptor
		if err := xml.Unmarshal(body, &md); err != nil {
			t.Fatalf("metadata: %v\n%s", err, body)
		}
		sp := md.SPSSODescriptors[0]
		if md.EntityID != g.URL()+"/sso/saml/metadata" || sp.AssertionConsumerServices[0].Location != g.URL()+"/sso/saml/acs" ||
			len(sp.AssertionConsumerServices) != 1 || sp.AssertionConsumerServices[0].Binding != saml.HTTPPostBinding {
			t.Errorf("metadata endpoints: %s", body)
		}
		hasEnc := false
		for _, kd := range sp.KeyDescriptors {
			hasEnc = hasEnc || kd.Use == "encryption"
		}
		if hasEnc != allowEnc {
			t.Errorf("allow encrypted %v, metadata advertises encryption key %v", allowEnc, hasEnc)
		}
		if len(sp.SingleLogoutServices) == 0 {
			t.Error("no SingleLogoutService")
		}
	}
}

func TestSAMLEncryptedAssertions(t *testing.T) {
	_, g := samlSetup(t, func(c *TenantConfig) { c.SAML.AllowEncryptedAssertions = true })
	g.putUser(&storage.User{UserName: "alice@acme.test", Active: true})
	// The IdP encrypts to the certificate in the SP metadata.
	acsForm, p := samlSignIn(t, newBrowser(t), g, "alice", "alice-pw", "/")
	mustContain(t, "app page", p.body, "for alice@acme.test")
	raw, _ := base64.StdEncoding.DecodeString(acsForm.Get("SAMLResponse"))
	if !bytes.Contains(raw, []byte("EncryptedAssertion")) {
		t.Fatal("the IdP did not encrypt the assertion")
	}
	// The same SP (key kept in the store) no longer accepting them, while
	// the IdP still encrypts to the metadata it has on file.
	g.cfg.SAML.AllowEncryptedAssertions = false
	g.restart()
	_, p = samlSignIn(t, newBrowser(t), g, "alice", "alice-pw", "/")
	if p.status != http.StatusBadRequest {
		t.Fatalf("status %d", p.status)
	}
	mustContain(t, "reason", g.lastRefusal(), "encrypted assertions are not allowed")
}

func TestSAMLRefusals(t *testing.T) {
	idp := startSAMLIdPWithUsers(t)
	idpKey := idp.signer.current()
	otherKey, _ := testpki.SigningKeyPair(t, "not the idp")
	shift := func(a *saml.Assertion, d time.Duration) {
		a.IssueInstant = a.IssueInstant.Add(d)
		a.Conditions.NotBefore = a.Conditions.NotBefore.Add(d)
		a.Conditions.NotOnOrAfter = a.Conditions.NotOnOrAfter.Add(d)
		for i := range a.Subject.SubjectConfirmations {
			c := a.Subject.SubjectConfirmations[i].SubjectConfirmationData
			c.NotOnOrAfter = c.NotOnOrAfter.Add(d)
		}
	}
	for _, tc := range []struct {
		name         string
		user, pw     string
		tamper       func(req *saml.IdpAuthnRequest, a *saml.Assertion)
		otherKey     bool
		unsigned     bool
		postToOurACS bool
		setup        func(g *gateway)
		mutate       func(*TenantConfig)
		wantStatus   int
		wantPage     string
		wantReason   string
	}{
		{name: "assertion signed by another key", user: "alice", pw: "alice-pw", otherKey: true,
			wantStatus: 400, wantPage: "Sign-in failed", wantReason: "saml response rejected"},
		{name: "no signature at all", user: "alice", pw: "alice-pw", unsigned: true,
			wantStatus: 400, wantPage: "Sign-in failed", wantReason: "signature"},
		{name: "wrong audience", user: "alice", pw: "alice-pw",
			tamper: func(_ *saml.IdpAuthnRequest, a *saml.Assertion) {
				a.Conditions.AudienceRestrictions[0].Audience.Value = "https://someone-else.example/sp"
			},
			wantStatus: 400, wantPage: "Sign-in failed", wantReason: "AudienceRestriction does not contain"},
		{name: "expired assertion", user: "alice", pw: "alice-pw",
			tamper:     func(_ *saml.IdpAuthnRequest, a *saml.Assertion) { shift(a, -2*time.Hour) },
			wantStatus: 400, wantPage: "Sign-in failed", wantReason: "expired"},
		{name: "assertion from the future", user: "alice", pw: "alice-pw",
			tamper:     func(_ *saml.IdpAuthnRequest, a *saml.Assertion) { shift(a, 2*time.Hour) },
			wantStatus: 400, wantPage: "Sign-in failed", wantReason: "future"},
		{name: "unknown InResponseTo", user: "alice", pw: "alice-pw",
			tamper: func(req *saml.IdpAuthnRequest, a *saml.Assertion) {
				forged := "id-" + hex.EncodeToString([]byte("not a request we made"))
				req.Request.ID = forged
				a.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = forged
			},
			wantStatus: 400, wantPage: "Sign-in failed", wantReason: "InResponseTo"},
		{name: "assertion InResponseTo another request", user: "alice", pw: "alice-pw",
			tamper: func(_ *saml.IdpAuthnRequest, a *saml.Assertion) {
				a.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = "id-0123456789"
			},
			wantStatus: 400, wantPage: "Sign-in failed", wantReason: "possible request IDs"},
		{name: "conditions expired beyond the gateway's skew", user: "alice", pw: "alice-pw",
			tamper: func(_ *saml.IdpAuthnRequest, a *saml.Assertion) {
				// Within crewjam's 180 s skew, outside the gateway's 60 s.
				a.Conditions.NotOnOrAfter = time.Now().Add(-2 * time.Minute)
			},
			wantStatus: 400, wantPage: "Sign-in failed", wantReason: "assertion expired (NotOnOrAfter"},
		{name: "response for another destination", user: "alice", pw: "alice-pw", postToOurACS: true,
			tamper: func(req *saml.IdpAuthnRequest, _ *saml.Assertion) {
				other := *req.ACSEndpoint
				other.Location = "https://someone-else.example/acs"
				req.ACSEndpoint = &other
			},
			wantStatus: 400, wantPage: "Sign-in failed", wantReason: "Destination"},
		{name: "wrong recipient", user: "alice", pw: "alice-pw",
			tamper: func(_ *saml.IdpAuthnRequest, a *saml.Assertion) {
				a.Subject.SubjectConfirmations[0].SubjectConfirmationData.Recipient = "https://someone-else.example/acs"
			},
			wantStatus: 400, wantPage: "Sign-in failed", wantReason: "Recipient"},
		{name: "inactive provisioned user", user: "alice", pw: "alice-pw",
			setup:      func(g *gateway) { g.putUser(&storage.User{UserName: "alice@acme.test", Active: false}) },
			wantStatus: 403, wantPage: "Your account is deactivated", wantReason: "user is deactivated"},
		{name: "email domain not allowed", user: "eve", pw: "eve-pw",
			mutate:     func(c *TenantConfig) { c.JIT = true; c.AllowedDomains = []string{"acme.test"} },
			wantStatus: 403, wantPage: "not allowed here", wantReason: `"evil.test" is not in allowed_domains`},
		{name: "not provisioned and no JIT", user: "carol", pw: "carol-pw",
			wantStatus: 403, wantPage: "You do not have access", wantReason: "just-in-time creation is off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := samlGateway(t, idp, tc.mutate)
			t.Cleanup(func() {
				idp.setTamper(nil)
				idp.signer.use(idpKey)
			})
			g.putUser(&storage.User{UserName: "alice.ok", Emails: []string{"alice-other@acme.test"}, Active: true})
			if tc.setup != nil {
				tc.setup(g)
			}
			idp.setTamper(tc.tamper)
			if tc.otherKey {
				idp.signer.use(otherKey)
			}
			idp.mu.Lock()
			idp.unsigned = tc.unsigned
			idp.mu.Unlock()
			b := newBrowser(t)
			acs := ""
			if tc.postToOurACS {
				acs = g.URL() + "/sso" + PathSAMLACS
			}
			_, p := samlSignInTo(t, b, g, tc.user, tc.pw, "/app", acs)
			if p.status != tc.wantStatus || p.url.Path != "/sso"+PathSAMLACS {
				t.Fatalf("got %d at %s, want %d at the ACS:\n%s", p.status, p.url, tc.wantStatus, p.body)
			}
			mustContain(t, "page", p.body, tc.wantPage)
			t.Logf("refusal: %s", g.lastRefusal())
			mustContain(t, "audit reason", g.lastRefusal(), tc.wantReason)
			if b.cookie(g.URL(), DefaultCookieName) != "" {
				t.Error("a refused sign-in set a session cookie")
			}
			if evs := g.events(storage.EventSignIn); len(evs) != 0 {
				t.Errorf("signin.succeeded recorded for a refusal: %+v", evs)
			}
		})
	}
}

// restoreFlow puts a consumed flow cookie back into the browser and makes
// the Service forget it was used (as a restart does), so that a replayed
// response gets past the flow check and meets the assertion replay cache:
// what an attacker who captured the cookie would see after a restart.
func restoreFlow(g *gateway, b *browser, flow *http.Cookie) {
	g.service().usedFlows = newUsedFlows(maxUsedFlows)
	b.jar.SetCookies(mustURL(g.URL()+"/sso/"), []*http.Cookie{flow})
}

func TestSAMLReplay(t *testing.T) {
	_, g := samlSetup(t, nil)
	alice := &storage.User{UserName: "alice@acme.test", Active: true}
	g.putUser(alice)
	b := newBrowser(t)

	// Keep the flow cookie as it was set, before the ACS consumes it.
	p := b.get(g.URL() + "/start")
	relayState := mustURL(p.url.String()).Query().Get("RelayState")
	flow := b.flowCookie(g, relayState)
	p = b.submitForm(p, map[string]string{"user": "alice", "password": "alice-pw"})
	_, acsForm := parseForm(t, p.body)
	p = b.submitForm(p, nil)
	mustContain(t, "first use", p.body, "app page /start for alice@acme.test")

	acs := g.URL() + "/sso" + PathSAMLACS
	t.Run("same post again", func(t *testing.T) {
		g.nextRefusalWindow()
		p := b.post(acs, acsForm)
		if p.status != http.StatusBadRequest {
			t.Fatalf("status %d", p.status)
		}
		mustContain(t, "reason", g.lastRefusal(), "sign-in cookie")
	})
	t.Run("same post with the flow cookie put back", func(t *testing.T) {
		g.nextRefusalWindow()
		b.jar.SetCookies(mustURL(g.URL()+"/sso/"), []*http.Cookie{flow})
		p := b.post(acs, acsForm)
		if p.status != http.StatusBadRequest {
			t.Fatalf("status %d", p.status)
		}
		mustContain(t, "reason", g.lastRefusal(), "already used")
	})
	t.Run("same post with the flow restored", func(t *testing.T) {
		g.nextRefusalWindow()
		restoreFlow(g, b, flow)
		p := b.post(acs, acsForm)
		if p.status != http.StatusBadRequest {
			t.Fatalf("status %d", p.status)
		}
		mustContain(t, "reason", g.lastRefusal(), "assertion replayed")
	})
	t.Run("after a restart", func(t *testing.T) {
		g.restart()
		g.nextRefusalWindow()
		b.jar.SetCookies(mustURL(g.URL()+"/sso/"), []*http.Cookie{flow})
		p := b.post(acs, acsForm)
		if p.status != http.StatusBadRequest {
			t.Fatalf("status %d", p.status)
		}
		mustContain(t, "reason", g.lastRefusal(), "assertion replayed")
	})
	t.Run("posted from another browser", func(t *testing.T) {
		g.nextRefusalWindow()
		p := newBrowser(t).post(acs, acsForm)
		if p.status != http.StatusBadRequest {
			t.Fatalf("status %d", p.status)
		}
		mustContain(t, "reason", g.lastRefusal(), "did not send the sign-in cookie")
	})
	if n := len(g.sessionsOf(alice.ID)); n != 1 {
		t.Fatalf("%d sessions; only the first post may sign in", n)
	}
}

func TestSAMLSingleLogout(t *testing.T) {
	_, g := samlSetup(t, nil)
	alice := &storage.User{UserName: "alice@acme.test", Active: true}
	g.putUser(alice)
	b := newBrowser(t)
	samlSignIn(t, b, g, "alice", "alice-pw", "/")
	if len(g.sessionsOf(alice.ID)) != 1 {
		t.Fatal("no session")
	}
	p := b.get(g.URL() + "/sso/logout")
	// Local session gone, the IdP was asked to log out (signed
	// LogoutRequest), and its LogoutResponse came back to our SLO endpoint.
	if p.status != http.StatusOK || p.url.Path != "/sso"+PathSAMLSLO {
		t.Fatalf("after logout: %d at %s\n%s", p.status, p.url, p.body)
	}
	mustContain(t, "page", p.body, "You are signed out")
	sawIdP := false
	for _, u := range b.visited() {
		if u.Path == "/slo" && u.Query().Get("SAMLRequest") != "" && u.Query().Get("Signature") != "" {
			sawIdP = true
		}
	}
	if !sawIdP {
		t.Error("no signed LogoutRequest reached the IdP")
	}
	if n := len(g.sessionsOf(alice.ID)); n != 0 {
		t.Fatalf("%d sessions after logout", n)
	}
	if len(g.events(storage.EventSignOut)) != 1 {
		t.Error("no signout event")
	}
	// The IdP session is over too: the next sign-in asks for the password.
	p = b.get(g.URL() + "/again")
	mustContain(t, "IdP login form", p.body, `name="password"`)
}

func TestSAMLSPKeyIsGeneratedOnceAndKept(t *testing.T) {
	_, g := samlSetup(t, nil)
	first := g.service().saml.cert.Raw
	g.restart()
	if !bytes.Equal(first, g.service().saml.cert.Raw) {
		t.Fatal("the SP certificate changed across a restart")
	}
}

// TestSAMLIdPInitiatedLogout: the person signs out at the IdP; the IdP
// sends a signed LogoutRequest to our SLO endpoint through the browser, the
// gateway ends the matching session and answers with a LogoutResponse.
func TestSAMLIdPInitiatedLogout(t *testing.T) {
	_, g := samlSetup(t, nil)
	alice := &storage.User{UserName: "alice@acme.test", Active: true}
	g.putUser(alice)
	b := newBrowser(t)
	samlSignIn(t, b, g, "alice", "alice-pw", "/")
	if len(g.sessionsOf(alice.ID)) != 1 {
		t.Fatal("no session")
	}
	var idpURL string
	for _, u := range b.visited() {
		if u.Path == "/sso" && !strings.HasPrefix(u.Host, mustURL(g.URL()).Host) {
			idpURL = u.Scheme + "://" + u.Host
		}
	}
	p := b.get(idpURL + "/logout")
	// The IdP propagates with an auto-submitted form or a redirect.
	for i := 0; i < 5 && strings.Contains(p.body, "<form"); i++ {
		p = b.submitForm(p, nil)
	}
	sawRequest := false
	for _, u := range b.visited() {
		if u.Path == "/sso"+PathSAMLSLO && u.Query().Get("SAMLRequest") != "" {
			sawRequest = true
		}
	}
	if !sawRequest {
		t.Fatalf("no LogoutRequest reached our SLO endpoint; last page %d at %s: %.300s", p.status, p.url, p.body)
	}
	if n := len(g.sessionsOf(alice.ID)); n != 0 {
		t.Fatalf("%d sessions after IdP-initiated logout (last page %d at %s)", n, p.status, p.url)
	}
	evs := g.events(storage.EventSignOut)
	if len(evs) != 1 || evs[0].Reason != "single logout requested by the IdP" {
		t.Errorf("signout events: %+v", evs)
	}
}

// TestSAMLHandConfiguredIdP signs in with the IdP given by entity id, SSO
// URL and certificate instead of metadata, and a configured SP key pair.
func TestSAMLHandConfiguredIdP(t *testing.T) {
	idp := startSAMLIdPWithUsers(t)
	spKey, spCert := testpki.SigningKeyPair(t, "configured sp")
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: idp.idp.IDP.Certificate.Raw}))
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(spKey)}))
	spCertPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: spCert.Raw}))
	g := newGateway(t)
	g.start(TenantConfig{SAML: &SAMLConfig{
		IDPEntityID:       idp.metadataURL(),
		IDPSSOURL:         idp.server.URL + "/sso",
		IDPSLOURL:         idp.server.URL + "/slo",
		IDPCertificatePEM: certPEM,
		EntityID:          "urn:portcullis:test-sp",
		SPKeyPEM:          keyPEM,
		SPCertPEM:         spCertPEM,
		NameIDFormat:      string(saml.EmailAddressNameIDFormat),
		SignAuthnRequests: true,
		EmailAttribute:    "urn:oid:0.9.2342.19200300.100.1.3",
		GroupsAttribute:   "eduPersonAffiliation", // by FriendlyName
	}, JIT: true})
	idp.registerSP(g.URL() + "/sso" + PathSAMLMetadata)
	if !g.service().saml.cert.Equal(spCert) {
		t.Fatal("configured SP certificate not used")
	}
	b := newBrowser(t)
	// samlidp's login form re-posts the AuthnRequest without its
	// HTTP-Redirect signature, so sign in at the IdP first; the signed
	// request then finds the IdP session.
	if p := b.post(idp.server.URL+"/login", url.Values{"user": {"alice"}, "password": {"alice-pw"}}); p.status != http.StatusOK {
		t.Fatalf("IdP login: %d", p.status)
	}
	p := b.get(g.URL() + "/hand")
	p = b.submitForm(p, nil)
	mustContain(t, "app page", p.body, "app page /hand for alice@acme.test groups=admins,engineering")
	for _, u := range b.visited() {
		if u.Path == "/sso" && u.Query().Get("SAMLRequest") != "" && u.Query().Get("Signature") == "" {
			t.Error("AuthnRequest not signed")
		}
	}
}

// TestSAMLMetadataFile reads the IdP from a metadata file instead of a URL.
func TestSAMLMetadataFile(t *testing.T) {
	idp := startSAMLIdPWithUsers(t)
	resp, err := http.Get(idp.metadataURL())
	if err != nil {
		t.Fatal(err)
	}
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	file := t.TempDir() + "/idp.xml"
	if err := os.WriteFile(file, md, 0o600); err != nil {
		t.Fatal(err)
	}
	g := newGateway(t)
	g.start(TenantConfig{SAML: &SAMLConfig{IDPMetadataFile: file, EntityID: g.URL() + "/sso/saml/metadata"}, JIT: true})
	idp.registerSP(g.URL() + "/sso" + PathSAMLMetadata)
	if got := g.service().saml.idp.get().EntityID; got != idp.metadataURL() {
		t.Fatalf("IdP entity id %q", got)
	}
	_, p := samlSignIn(t, newBrowser(t), g, "carol", "carol-pw", "/f")
	mustContain(t, "app page", p.body, "app page /f for carol@acme.test")

	// A file that is not metadata stops the start with a clear error.
	if err := os.WriteFile(file, []byte("<html/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = New(t.Context(), TenantConfig{Tenant: "other", SAML: &SAMLConfig{IDPMetadataFile: file, EntityID: "e"}}, g.store, nil)
	if err == nil || !strings.Contains(err.Error(), "saml IdP metadata") {
		t.Fatalf("bad metadata file: %v", err)
	}
}
