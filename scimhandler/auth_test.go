package scimhandler_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/scimhandler"
	"github.com/portcullis/portcullis/storage"
)

func TestBearerAuth(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		header string
		status int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"other scheme", "Basic " + e.token, http.StatusUnauthorized},
		{"scheme only", "Bearer", http.StatusUnauthorized},
		{"wrong token", "Bearer " + strings.Repeat("0", 64), http.StatusUnauthorized},
		{"token with a suffix", "Bearer " + e.token + "x", http.StatusUnauthorized},
		{"huge token", "Bearer " + strings.Repeat("a", 8000), http.StatusUnauthorized},
		{"good token", "Bearer " + e.token, http.StatusOK},
		{"scheme in any case", "bEaReR " + e.token, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("GET", "/Users", nil, "Authorization", tt.header)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.status == http.StatusUnauthorized {
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
				}
				if r.header.Get("Content-Type") != "application/scim+json" {
					t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
				}
				b := r.obj(t)
				if b["status"] != "401" || path(b, "schemas", 0) != "urn:ietf:params:scim:api:messages:2.0:Error" {
					t.Errorf("body %s", r.body)
				}
				if strings.Contains(string(r.body), e.token) {
					t.Error("the token is echoed")
				}
			}
		})
	}
	// Every endpoint checks the token first, even unknown ones.
	for _, p := range []string{"/Users", "/Groups/x", "/ServiceProviderConfig", "/Schemas", "/Bulk", "/nowhere"} {
		if r := e.do("GET", p, nil, "Authorization", ""); r.status != http.StatusUnauthorized {
			t.Errorf("GET %s without token: %d", p, r.status)
		}
	}
	// One rejection is recorded (rate-limited), never with the token.
	evs := e.events(storage.EventTokenRejected)
	if len(evs) != 1 {
		t.Errorf("token.rejected events %d, want 1 (rate-limited)", len(evs))
	}
	for _, ev := range evs {
		if strings.Contains(ev.Reason+ev.Before+ev.After, e.token) {
			t.Error("rejection event holds a token")
		}
	}
}

func TestTokenRotateAndDisable(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	old := e.token
	e.want(e.do("GET", "/Users", nil), http.StatusOK)

	fresh, err := scimhandler.IssueToken(ctx, e.badger, tenant, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if fresh == old || len(fresh) != 64 {
		t.Fatalf("rotated token %q", fresh)
	}
	e.want(e.do("GET", "/Users", nil), http.StatusUnauthorized) // old token dies at once
	e.token = fresh
	e.want(e.do("GET", "/Users", nil), http.StatusOK)

	// Only the hash is stored.
	_ = e.badger.View(ctx, tenant, func(tx storage.ReadTx) error {
		tok, err := tx.GetSCIMToken()
		if err != nil {
			t.Fatal(err)
		}
		if tok.Hash != storage.HashSecret(fresh) {
			t.Error("stored hash is not SHA-256 of the token")
		}
		return nil
	})

	if err := scimhandler.DisableToken(ctx, e.badger, tenant, "admin"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/Users", "/Groups", "/ServiceProviderConfig"} {
		e.want(e.do("GET", p, nil), http.StatusUnauthorized)
	}
	if err := scimhandler.DisableToken(ctx, e.badger, tenant, "admin"); err != nil {
		t.Fatalf("disabling twice: %v", err)
	}
	again, err := scimhandler.IssueToken(ctx, e.badger, tenant, "admin")
	if err != nil {
		t.Fatal(err)
	}
	e.want(e.do("GET", "/Users", nil), http.StatusUnauthorized)
	e.token = again
	e.want(e.do("GET", "/Users", nil), http.StatusOK)

	var types []string
	for _, ev := range e.events(storage.EventTokenCreated, storage.EventTokenRotated, storage.EventTokenDisabled) {
		types = append(types, ev.Type)
		if ev.Actor != "admin" || ev.ResourceID == "" {
			t.Errorf("token event %+v", ev)
		}
		for _, tok := range []string{old, fresh, again} {
			if strings.Contains(ev.Before+ev.After+ev.Reason, tok) {
				t.Errorf("token event leaks a token: %+v", ev)
			}
		}
	}
	if got := strings.Join(types, ","); got != "token.created,token.disabled,token.rotated,token.created" {
		t.Errorf("token events %s", got)
	}
}

func TestTenantIsolation(t *testing.T) {
	acme := newEnv(t)
	acme.createUser("alice")
	// A second tenant on the same store with its own handler and token.
	globex, err := scimhandler.New(scimhandler.Config{Tenant: "globex", Store: acme.badger})
	if err != nil {
		t.Fatal(err)
	}
	globexToken, err := scimhandler.IssueToken(context.Background(), acme.badger, "globex", "admin")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/scim/v2/globex/", globex)
	srv := newServer(t, mux)
	g := &testEnv{t: t, badger: acme.badger, token: acme.token, base: srv.URL + "/scim/v2/globex", client: srv.Client()}
	g.want(g.do("GET", "/Users", nil), http.StatusUnauthorized) // acme's token on globex
	g.token = globexToken
	list := g.want(g.do("GET", "/Users", nil), http.StatusOK).obj(t)
	if num(list["totalResults"]) != 0 {
		t.Errorf("globex sees acme's users: %s", list)
	}
	acme.token = globexToken
	acme.want(acme.do("GET", "/Users", nil), http.StatusUnauthorized)
}
