package sso

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// TestManualUserSignsIn: a user an operator created by hand signs in
// through the IdP and is matched to the manual record (by userName or by
// verified email); just-in-time refresh never rewrites it (source, pinned
// role, groups stay), and the session records the client's address and
// User-Agent, and the user's last sign-in is recorded.
func TestManualUserSignsIn(t *testing.T) {
	for _, tc := range []struct {
		name    string
		subject string
		user    storage.User
	}{
		{"matched by userName", "sub-bob", storage.User{UserName: "bob", DisplayName: "Bob by hand"}},
		{"matched by verified email", "sub-alice", storage.User{UserName: "alice-manual", Emails: []string{"alice@acme.test"}, DisplayName: "Alice by hand"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op, g := oidcSetup(t, func(c *TenantConfig) { c.JIT = true })
			u := tc.user
			u.Active, u.Source, u.Role = true, storage.SourceManual, "editor"
			g.putUser(&u)
			op.AutoLogin(tc.subject)
			b := newBrowser(t)
			p := b.get(g.URL() + "/app")
			if p.status != http.StatusOK {
				t.Fatalf("sign-in answered %d: %s", p.status, p.body)
			}
			mustContain(t, "app page", p.body, "for "+u.UserName+" ")
			after := g.userByName(u.UserName)
			if after.ID != u.ID || after.Source != storage.SourceManual || after.Role != "editor" ||
				after.DisplayName != u.DisplayName || after.Version != u.Version {
				t.Fatalf("manual user after sign-in = %+v, want it untouched (%+v)", after, u)
			}
			if groups := g.groupNames(u.ID); len(groups) != 0 {
				t.Fatalf("manual user got the IdP's groups %v", groups)
			}
			sessions := g.sessionsOf(u.ID)
			if len(sessions) != 1 {
				t.Fatalf("sessions = %d, want 1", len(sessions))
			}
			s := sessions[0]
			if s.ClientAddr != "127.0.0.1" || !strings.HasPrefix(s.UserAgent, "Go-http-client/") {
				t.Fatalf("session client = %q %q, want 127.0.0.1 and Go's User-Agent", s.ClientAddr, s.UserAgent)
			}
			err := g.store.View(context.Background(), testTenant, func(tx storage.ReadTx) error {
				at, ok, err := storage.LastSignIn(tx, u.ID)
				if err != nil || !ok || at.Sub(s.Created).Abs() > 1e9 {
					t.Fatalf("last sign-in = %v %v %v, want the session's start %v", at, ok, err, s.Created)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestClipValid(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"Mozilla/5.0", 64, "Mozilla/5.0"},
		{"a\r\nb\x00c", 64, "abc"},
		{"ééé", 5, "éé"},
		{strings.Repeat("x", 300), 256, strings.Repeat("x", 256)},
		{"bad\xffutf8", 64, "badutf8"},
	} {
		if got := clipValid(tc.in, tc.n); got != tc.want {
			t.Errorf("clipValid(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
