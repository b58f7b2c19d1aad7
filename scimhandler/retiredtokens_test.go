package scimhandler_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/scimhandler"
	"github.com/portcullis/portcullis/storage"
)

// TestRetiredTokenIsNotAGuess: a token that was rotated away or disabled
// gets 401 saying so, however many unknown tokens the same address sent
// before (and those get 429); it never spends the guessing budget.
func TestRetiredTokenIsNotAGuess(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	clock := &frozenClock{now: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
	scimhandler.SetClock(e.h, clock.Now)

	first := e.token
	second, err := scimhandler.IssueToken(ctx, e.badger, tenant, "admin")
	if err != nil {
		t.Fatal(err)
	}
	e.token = second

	limited := 0
	for i := 0; i < 50; i++ {
		guess, _ := storage.NewSecret()
		r := e.do("GET", "/Users", nil, "Authorization", "Bearer "+guess)
		switch r.status {
		case http.StatusTooManyRequests:
			limited++
		case http.StatusUnauthorized:
			if d := str(r.obj(t)["detail"]); d != "invalid bearer token" {
				t.Errorf("unknown token detail %q", d)
			}
		default:
			t.Fatalf("guess %d: status %d", i+1, r.status)
		}
	}
	if limited != 40 {
		t.Fatalf("%d of 50 guesses limited, want 40", limited)
	}

	tests := []struct {
		name   string
		token  string
		status int
		detail string
	}{
		{"the rotated-away token", first, http.StatusUnauthorized, "this token was rotated on "},
		{"the rotated-away token again", first, http.StatusUnauthorized, "; use the current token"},
		{"the current token", second, http.StatusOK, ""},
		{"an unknown token is still limited", strings.Repeat("ab", 32), http.StatusTooManyRequests, "too many failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.want(e.do("GET", "/Users", nil, "Authorization", "Bearer "+tt.token), tt.status)
			if tt.detail == "" {
				return
			}
			b := r.obj(t)
			if d := str(b["detail"]); !strings.Contains(d, tt.detail) {
				t.Errorf("detail %q, want it to contain %q", d, tt.detail)
			}
			if strings.Contains(string(r.body), tt.token) {
				t.Error("the token is echoed")
			}
			if tt.status == http.StatusUnauthorized && r.header.Get("Retry-After") != "" {
				t.Error("a 401 carries Retry-After")
			}
		})
	}

	// The minute's token.rejected record names the retired token's id and
	// says it was not counted as a guess.
	clock.advance(time.Minute)
	e.want(e.do("GET", "/Users", nil, "Authorization", "Bearer "+first), http.StatusUnauthorized)
	evs := e.events(storage.EventTokenRejected)
	if len(evs) != 2 || !strings.Contains(evs[0].Reason, "rotated on") || !strings.Contains(evs[0].Reason, "not counted as a guess") {
		t.Errorf("token.rejected events: %+v", evs)
	}
	for _, ev := range evs {
		if strings.Contains(ev.Reason, first) || strings.Contains(ev.Reason, second) {
			t.Error("a token.rejected event holds a token")
		}
	}

	// Disabled: both the rotated-away and the last live token are told SCIM
	// is disabled; an unknown token is still a guess.
	if err := scimhandler.DisableToken(ctx, e.badger, tenant, "admin"); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{first, second} {
		r := e.want(e.do("GET", "/Groups", nil, "Authorization", "Bearer "+tok), http.StatusUnauthorized)
		if d := str(r.obj(t)["detail"]); !strings.Contains(d, "SCIM is disabled for this tenant") {
			t.Errorf("disabled tenant's old token: detail %q", d)
		}
	}
	// (The minute that passed refilled the address's budget: 401.)
	r := e.want(e.do("GET", "/Users", nil, "Authorization", "Bearer "+strings.Repeat("cd", 32)), http.StatusUnauthorized)
	if d := str(r.obj(t)["detail"]); d != "invalid bearer token" {
		t.Errorf("disabled tenant, unknown token: detail %q", d)
	}

	// Enabled again: the token disabled last is told it stopped working
	// when SCIM was disabled, and to use the current one.
	third, err := scimhandler.IssueToken(ctx, e.badger, tenant, "admin")
	if err != nil {
		t.Fatal(err)
	}
	r = e.want(e.do("GET", "/Users", nil, "Authorization", "Bearer "+second), http.StatusUnauthorized)
	if d := str(r.obj(t)["detail"]); !strings.Contains(d, "when SCIM was disabled") || !strings.Contains(d, "use the current token") {
		t.Errorf("re-enabled tenant, disabled token: detail %q", d)
	}
	e.want(e.do("GET", "/Users", nil, "Authorization", "Bearer "+third), http.StatusOK)

	// The store keeps hashes only.
	err = e.badger.View(ctx, tenant, func(tx storage.ReadTx) error {
		b, err := tx.GetRecord("scim.retiredtokens", "list")
		if err != nil {
			return err
		}
		for _, tok := range []string{first, second, third} {
			if strings.Contains(string(b), tok) {
				t.Error("retired-token record holds a plaintext token")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRetiredTokensAreBounded: only the last 20 retired tokens are
// remembered; an older one is an unknown token again.
func TestRetiredTokensAreBounded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tokens := []string{e.token}
	for i := 0; i < 21; i++ {
		tok, err := scimhandler.IssueToken(ctx, e.badger, tenant, "admin")
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	r := e.want(e.do("GET", "/Users", nil, "Authorization", "Bearer "+tokens[0]), http.StatusUnauthorized)
	if d := str(r.obj(t)["detail"]); d != "invalid bearer token" {
		t.Errorf("the 22nd-last token: detail %q, want it forgotten", d)
	}
	r = e.want(e.do("GET", "/Users", nil, "Authorization", "Bearer "+tokens[1]), http.StatusUnauthorized)
	if d := str(r.obj(t)["detail"]); !strings.Contains(d, "rotated") {
		t.Errorf("the 21st-last token: detail %q, want it remembered", d)
	}
	e.token = tokens[len(tokens)-1]
	e.want(e.do("GET", "/Users", nil), http.StatusOK)
}
