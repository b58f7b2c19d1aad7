package sso

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/storage"
)

func TestEmailVerified(t *testing.T) {
	for _, tc := range []struct {
		name         string
		claims       map[string]any
		trustMissing bool
		want         bool
	}{
		{"true", map[string]any{"email_verified": true}, false, true},
		{`"true"`, map[string]any{"email_verified": "true"}, false, true},
		{"false", map[string]any{"email_verified": false}, false, false},
		{`"false"`, map[string]any{"email_verified": "false"}, false, false},
		{`"TRUE"`, map[string]any{"email_verified": "TRUE"}, false, false},
		{`"1"`, map[string]any{"email_verified": "1"}, false, false},
		{"1", map[string]any{"email_verified": float64(1)}, false, false},
		{"null", map[string]any{"email_verified": nil}, false, false},
		{"missing", map[string]any{}, false, false},
		{"missing, opted in", map[string]any{}, true, true},
		{"false, opted in", map[string]any{"email_verified": false}, true, false},
		{`"false", opted in`, map[string]any{"email_verified": "false"}, true, false},
		{"null, opted in", map[string]any{"email_verified": nil}, true, false},
	} {
		if got := emailVerified(tc.claims, tc.trustMissing); got != tc.want {
			t.Errorf("%s: emailVerified = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// mallory holds an account at the provider whose unverified email is
// alice's: the nOAuth class of attack.
var mallory = devidp.User{Subject: "sub-mallory", PreferredUsername: "mallory", Email: "alice@acme.test", EmailVerified: false, Name: "Mallory"}

// TestUnverifiedEmailIdentifiesNoOne: an unverified email matches no user
// and passes no allowed_domains. (devidp leaves email_verified out when it
// is false, so mallory's claim is missing: what the opt-in trusts.) With
// the opt-in, an account that signed in before is still safe: it is
// linked to its own subject, and a match by email alone is refused.
func TestUnverifiedEmailIdentifiesNoOne(t *testing.T) {
	users := append(append([]devidp.User{}, oidcUsers...), mallory)
	trustMissing := func(c *TenantConfig) { c.OIDC.TrustEmailWithoutVerifiedClaim = true }
	for _, tc := range []struct {
		name        string
		mutate      func(*TenantConfig)
		aliceBefore bool // alice signs in herself first
		wantPage    string
		wantReason  string
	}{
		{"provisioned alice", nil, false, "You do not have access", `no provisioned user matches "mallory"`},
		{"provisioned alice who signed in before", nil, true, "You do not have access", `no provisioned user matches "mallory"`},
		{"jit with allowed domains",
			func(c *TenantConfig) { c.JIT = true; c.AllowedDomains = []string{"acme.test"} }, false,
			"not allowed here", "no email to check against allowed_domains"},
		{"missing claims trusted, alice signed in before", trustMissing, true,
			"You do not have access", "matches a user who signs in with another account"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op, g := oidcSetupUsers(t, users, tc.mutate)
			alice := &storage.User{UserName: "alice", Emails: []string{"alice@acme.test"}, Active: true}
			g.putUser(alice)
			if tc.aliceBefore {
				op.AutoLogin("sub-alice")
				mustContain(t, "alice", newBrowser(t).get(g.URL()+"/app").body, "app page /app for alice ")
			}
			op.AutoLogin("sub-mallory")
			b := newBrowser(t)
			p := b.get(g.URL() + "/app")
			if p.status != http.StatusForbidden {
				t.Fatalf("mallory got %d:\n%s", p.status, p.body)
			}
			mustContain(t, "page", p.body, tc.wantPage)
			mustContain(t, "reason", g.lastRefusal(), tc.wantReason)
			// Only alice's own sign-in made a session.
			if n := len(g.sessionsOf(alice.ID)); n > 1 || (n == 1) != tc.aliceBefore {
				t.Fatalf("alice has %d sessions", n)
			}
		})
	}
}

// TestSubjectLinkMatchesFirst: after a first sign-in, the provider's
// subject finds the same user even when the names that matched it then
// have changed or been taken by someone else.
func TestSubjectLinkMatchesFirst(t *testing.T) {
	op, g := oidcSetup(t, nil)
	alice := &storage.User{UserName: "alice@acme.test", Emails: []string{"alice@acme.test"}, Active: true}
	g.putUser(alice)
	op.AutoLogin("sub-alice")
	p := newBrowser(t).get(g.URL() + "/app")
	mustContain(t, "first sign-in", p.body, "for alice@acme.test")

	// SCIM renames alice; another person now holds her old userName and
	// email.
	alice.UserName, alice.Emails = "alice.renamed", []string{"alice.renamed@acme.test"}
	g.putUser(alice)
	other := &storage.User{UserName: "alice@acme.test", Emails: []string{"alice@acme.test"}, Active: true}
	g.putUser(other)
	p = newBrowser(t).get(g.URL() + "/app")
	mustContain(t, "second sign-in", p.body, "for alice.renamed")
	if n := len(g.sessionsOf(other.ID)); n != 0 {
		t.Fatalf("the newcomer got %d sessions", n)
	}

	// The linked user deleted: the link is ignored and replaced.
	err := g.store.Update(context.Background(), testTenant, func(tx storage.Tx) error { return tx.DeleteUser(alice.ID) })
	if err != nil {
		t.Fatal(err)
	}
	p = newBrowser(t).get(g.URL() + "/app")
	mustContain(t, "after deletion", p.body, "for alice@acme.test")
	if n := len(g.sessionsOf(other.ID)); n != 1 {
		t.Fatalf("the remaining user has %d sessions", n)
	}
}

// TestParallelSignIns: several sign-ins started in one browser (tabs) each
// finish, in any order.
func TestParallelSignIns(t *testing.T) {
	op, g := oidcSetup(t, nil)
	g.putUser(&storage.User{UserName: "alice@acme.test", Active: true})
	op.AutoLogin("sub-alice")
	b := newBrowser(t)
	var callbacks []string
	for i := 0; i < 3; i++ {
		callbacks = append(callbacks, callbackURL(t, b, g).String())
	}
	flows := 0
	for _, c := range b.jar.Cookies(mustURL(g.URL() + "/sso/")) {
		if strings.Contains(c.Name, "_flow_") {
			flows++
		}
	}
	if flows != 3 {
		t.Fatalf("%d flow cookies for 3 sign-ins", flows)
	}
	for _, i := range []int{2, 0, 1} {
		if p := b.get(callbacks[i]); p.status != http.StatusOK || p.url.Path != "/after" {
			t.Fatalf("sign-in %d: %d at %s", i, p.status, p.url)
		}
	}
	if n := len(g.events(storage.EventSignIn)); n != 3 {
		t.Fatalf("%d signin.succeeded events", n)
	}
}

// TestUserNameMatchHonoursSubjectLinks: a second account at the same IdP
// whose preferred_username (editable at many IdPs, and not unique by OIDC
// Core §5.7) names a user linked to another subject is refused, as an email
// match is (found by review). Control: the linked subject signs in.
func TestUserNameMatchHonoursSubjectLinks(t *testing.T) {
	impostor := devidp.User{Subject: "sub-impostor", PreferredUsername: "alice", Email: "impostor@evil.test", EmailVerified: true, Name: "Impostor"}
	users := append(append([]devidp.User{}, oidcUsers...), devidp.User{Subject: "sub-alice2", PreferredUsername: "alice", Email: "alice@acme.test", EmailVerified: true}, impostor)
	op, g := oidcSetupUsers(t, users, nil)
	alice := &storage.User{UserName: "alice", Emails: []string{"alice@acme.test"}, Active: true}
	g.putUser(alice)
	op.AutoLogin("sub-alice2") // alice herself: her subject is linked
	mustContain(t, "alice", newBrowser(t).get(g.URL()+"/app").body, "for alice")
	op.AutoLogin("sub-impostor")
	if p := newBrowser(t).get(g.URL() + "/app"); p.status != http.StatusForbidden {
		t.Fatalf("another subject with alice's preferred_username got %d: %s", p.status, p.body)
	}
	if n := len(g.sessionsOf(alice.ID)); n != 1 {
		t.Fatalf("alice has %d sessions, want her own only", n)
	}
	op.AutoLogin("sub-alice2")
	mustContain(t, "alice again", newBrowser(t).get(g.URL()+"/app").body, "for alice")
}
