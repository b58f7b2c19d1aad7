package scimhandler_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/portcullis/portcullis/scimhandler"
	"github.com/portcullis/portcullis/storage"
)

// TestTokenUsage: accepted requests and refused tokens are counted in
// memory, and the last accepted use is kept (client address, User-Agent,
// never the token) and persisted.
func TestTokenUsage(t *testing.T) {
	tracker := scimhandler.NewUsageTracker()
	e := newEnv(t, func(c *scimhandler.Config) { c.Usage = tracker })
	if e.h.Usage() != tracker {
		t.Fatal("Handler.Usage is not the configured tracker")
	}
	const entra = "Microsoft Azure AD SCIM provisioning 1.0.0"
	for i := 0; i < 3; i++ {
		e.want(e.do("GET", "/Users?count=1", nil, "User-Agent", entra), http.StatusOK)
	}
	e.want(e.do("GET", "/Users", nil, "Authorization", "Bearer wrong"), http.StatusUnauthorized)
	e.want(e.do("GET", "/Users", nil, "Authorization", ""), http.StatusUnauthorized)

	u := tracker.Usage(time.Now())
	if u.Requests24h != 5 || u.Failures24h != 2 {
		t.Fatalf("usage = %d requests, %d failures; want 5 and 2", u.Requests24h, u.Failures24h)
	}
	if u.LastUsed == nil || u.LastUsed.UserAgent != entra || u.LastUsed.ClientAddr == "" || u.LastUsed.TokenID == "" {
		t.Fatalf("last used = %+v", u.LastUsed)
	}
	if got := scimhandler.KnownClient(u.LastUsed.UserAgent); got != "Microsoft Entra ID" {
		t.Fatalf("KnownClient(%q) = %q", entra, got)
	}
	// Outside the window, nothing counts.
	if later := tracker.Usage(time.Now().Add(25 * time.Hour)); later.Requests24h != 0 {
		t.Fatalf("usage 25 h later = %+v", later)
	}
	err := e.badger.View(context.Background(), tenant, func(tx storage.ReadTx) error {
		use, err := scimhandler.LastTokenUse(tx)
		if err != nil || use == nil || use.UserAgent != entra {
			t.Fatalf("persisted last use = %+v, %v", use, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestKnownClient(t *testing.T) {
	for ua, want := range map[string]string{
		"Microsoft Azure AD SCIM provisioning 1.0.0": "Microsoft Entra ID",
		"Okta SCIM Client 1.0.0":                     "Okta",
		"OneLogin SCIM":                              "OneLogin",
		"JumpCloud SCIM Client":                      "JumpCloud",
		"curl/8.5.0":                                 "",
		"":                                           "",
	} {
		if got := scimhandler.KnownClient(ua); got != want {
			t.Errorf("KnownClient(%q) = %q, want %q", ua, got, want)
		}
	}
}
