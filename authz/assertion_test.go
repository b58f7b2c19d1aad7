package authz

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
)

const (
	testIssuer   = "https://gateway.test/portcullis/acme"
	testAudience = "https://wiki.internal"
)

func newSigner(t testing.TB, st storage.Store) *AssertionSigner {
	t.Helper()
	s, err := NewAssertionSigner(context.Background(), AssertionConfig{Store: st, Tenant: testTenant, Issuer: testIssuer})
	if err != nil {
		t.Fatalf("NewAssertionSigner: %v", err)
	}
	return s
}

// TestAssertionVerifiesAgainstJWKS plays the backend: it fetches the JWKS
// over HTTP and verifies the assertion it received with go-oidc, as an app
// would, then checks the claims, the audience and the expiry.
func TestAssertionVerifiesAgainstJWKS(t *testing.T) {
	f := newFixture(t)
	g := f.group("Wiki Editors", "")
	ids := f.identities(threeRoles(GroupMapping{Group: "Wiki Editors", Role: "editor"}))
	signer := newSigner(t, f.store)
	u := f.user("ana")
	f.join(u, g)
	cookie := f.signIn(u)
	up := &upstream{}
	srv := serve(t, f.gate(ids, GateConfig{Assertions: signer, AssertionAudience: testAudience}), up)
	jwks := httptest.NewServer(signer.JWKSHandler())
	t.Cleanup(jwks.Close)

	assertion := func() string {
		t.Helper()
		if res := get(t, srv, "/", asAPI, withCookie(cookie), rawHeader("X-Remote-Assertion", "forged")); res.status != 200 {
			t.Fatalf("status %d", res.status)
		}
		h, _ := up.received()
		if len(h["X-Remote-Assertion"]) != 1 {
			t.Fatalf("assertion header values %q, want exactly one", h["X-Remote-Assertion"])
		}
		return h.Get("X-Remote-Assertion")
	}
	tok := assertion()
	ctx := context.Background()
	keys := oidc.NewRemoteKeySet(ctx, jwks.URL)
	verifier := func(aud string, now time.Time) *oidc.IDTokenVerifier {
		return oidc.NewVerifier(testIssuer, keys, &oidc.Config{
			ClientID: aud, SupportedSigningAlgs: []string{oidc.ES256}, Now: func() time.Time { return now },
		})
	}

	idt, err := verifier(testAudience, f.clock.Now()).Verify(ctx, tok)
	if err != nil {
		t.Fatalf("backend verification: %v", err)
	}
	var claims AssertionClaims
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != u.ID || claims.PreferredUsername != "ana" || claims.Email != "ana@example.com" ||
		claims.Name != "User ana" || claims.Role != "editor" || claims.Tenant != testTenant ||
		len(claims.Groups) != 1 || claims.Groups[0] != "Wiki Editors" {
		t.Fatalf("claims %+v", claims)
	}
	if exp := idt.Expiry.Sub(f.clock.Now()); exp != DefaultAssertionTTL {
		t.Fatalf("expires in %s, want %s", exp, DefaultAssertionTTL)
	}

	if _, err := verifier("https://other.internal", f.clock.Now()).Verify(ctx, tok); err == nil {
		t.Fatal("an assertion for another audience verified")
	}
	if _, err := verifier(testAudience, f.clock.Now().Add(DefaultAssertionTTL+time.Second)).Verify(ctx, tok); err == nil ||
		!strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired assertion: %v, want an expiry error", err)
	}
	tampered := tok[:len(tok)-4] + "AAAA"
	if _, err := verifier(testAudience, f.clock.Now()).Verify(ctx, tampered); err == nil {
		t.Fatal("a tampered assertion verified")
	}

	// The header names the key; go-jose finds it in the JWKS too.
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if kid := parsed.Headers[0].KeyID; kid != signer.KeyID() || kid == "" {
		t.Fatalf("kid %q, want %q", kid, signer.KeyID())
	}
	var set jose.JSONWebKeySet
	res := get(t, jwks, "/")
	if err := json.Unmarshal([]byte(res.body), &set); err != nil || res.header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("JWKS %q: %v", res.body, err)
	}
	var std jwt.Claims
	if err := parsed.Claims(set.Key(signer.KeyID())[0].Key, &std); err != nil {
		t.Fatalf("go-jose verification: %v", err)
	}
	if err := std.Validate(jwt.Expected{Issuer: testIssuer, AnyAudience: jwt.Audience{testAudience}, Time: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}

	// Reused while fresh, renewed after half its life, and renewed at once
	// when the store changes (here: the role).
	if again := assertion(); again != tok {
		t.Fatal("a fresh assertion was not reused")
	}
	f.clock.Advance(DefaultAssertionTTL/2 + time.Second)
	renewed := assertion()
	if renewed == tok {
		t.Fatal("an assertion past half its life was reused")
	}
	if _, err := verifier(testAudience, f.clock.Now()).Verify(ctx, renewed); err != nil {
		t.Fatalf("renewed assertion: %v", err)
	}
	f.leave(u, g)
	afterChange, err := verifier(testAudience, f.clock.Now()).Verify(ctx, assertion())
	if err != nil {
		t.Fatal(err)
	}
	if err := afterChange.Claims(&claims); err != nil || claims.Role != "viewer" || len(claims.Groups) != 0 {
		t.Fatalf("after leaving the group: claims %+v, %v", claims, err)
	}
}

// TestAssertionKeySurvivesRestart reopens the store and checks the signer
// comes back with the same key, so backends' cached JWKS stay valid.
func TestAssertionKeySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	open := func() *badgerstore.Store {
		st, err := badgerstore.Open(dir, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := open()
	first := newSigner(t, st)
	second := newSigner(t, st)
	if first.KeyID() != second.KeyID() {
		t.Fatalf("two signers on one store disagree: %s %s", first.KeyID(), second.KeyID())
	}
	id := &Identity{UserID: "u1", UserName: "x", Tenant: testTenant}
	tok, _, err := first.Sign(id, testAudience, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = open()
	defer st.Close()
	restarted := newSigner(t, st)
	if restarted.KeyID() != first.KeyID() {
		t.Fatalf("key id changed across a restart: %s -> %s", first.KeyID(), restarted.KeyID())
	}
	jwks := httptest.NewServer(restarted.JWKSHandler())
	defer jwks.Close()
	v := oidc.NewVerifier(testIssuer, oidc.NewRemoteKeySet(context.Background(), jwks.URL),
		&oidc.Config{ClientID: testAudience, SupportedSigningAlgs: []string{oidc.ES256}})
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("a token signed before the restart does not verify against the JWKS after it: %v", err)
	}

	// Another tenant gets its own key.
	other, err := NewAssertionSigner(context.Background(), AssertionConfig{Store: st, Tenant: "other", Issuer: testIssuer})
	if err != nil {
		t.Fatal(err)
	}
	if other.KeyID() == first.KeyID() {
		t.Fatal("two tenants share an assertion key")
	}
}

func TestAssertionConfig(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		cfg  AssertionConfig
	}{
		{"no issuer", AssertionConfig{Store: f.store, Tenant: testTenant}},
		{"no store", AssertionConfig{Tenant: testTenant, Issuer: testIssuer}},
		{"ttl too long", AssertionConfig{Store: f.store, Tenant: testTenant, Issuer: testIssuer, TTL: time.Hour}},
		{"negative ttl", AssertionConfig{Store: f.store, Tenant: testTenant, Issuer: testIssuer, TTL: -time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewAssertionSigner(context.Background(), tc.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	// A corrupt stored key is a clear error, not a new key silently.
	f.update(func(tx storage.Tx) error { return tx.PutRecord(assertionKeyKind, assertionKeyName, []byte("junk"), 0) })
	if _, err := NewAssertionSigner(context.Background(), AssertionConfig{Store: f.store, Tenant: testTenant, Issuer: testIssuer}); err == nil ||
		!strings.Contains(err.Error(), "unreadable") {
		t.Fatalf("corrupt key: %v", err)
	}
	s := newSignerOther(t, f)
	rec := httptest.NewRecorder()
	s.JWKSHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST to the JWKS: %d", rec.Code)
	}
}

func newSignerOther(t *testing.T, f *fixture) *AssertionSigner {
	s, err := NewAssertionSigner(context.Background(), AssertionConfig{Store: f.store, Tenant: "tenant-b", Issuer: testIssuer})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
