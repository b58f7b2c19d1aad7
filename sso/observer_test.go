package sso

import (
	"fmt"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/storage"
)

// TestObserveSignIn checks the result every sign-in callback reports.
func TestObserveSignIn(t *testing.T) {
	for _, tc := range []struct {
		name    string
		subject string
		faults  devidp.Faults
		setup   func(g *gateway)
		mutate  func(*TenantConfig)
		want    string
	}{
		{name: "success", subject: "sub-alice", want: "oidc " + SignInSucceeded,
			setup: func(g *gateway) { g.putUser(&storage.User{UserName: "alice@acme.test", Active: true}) }},
		{name: "inactive", subject: "sub-alice", want: "oidc " + SignInInactive,
			setup: func(g *gateway) { g.putUser(&storage.User{UserName: "alice@acme.test", Active: false}) }},
		{name: "not provisioned", subject: "sub-carol", want: "oidc " + SignInNotProvisioned},
		{name: "domain", subject: "sub-eve", want: "oidc " + SignInDomainNotAllowed,
			mutate: func(c *TenantConfig) { c.JIT = true; c.AllowedDomains = []string{"acme.test"} }},
		{name: "unverifiable answer", subject: "sub-alice", faults: devidp.Faults{WrongNonce: true}, want: "oidc " + SignInInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			op, g := oidcSetup(t, func(c *TenantConfig) {
				c.ObserveSignIn = func(protocol, result string) {
					mu.Lock()
					got = append(got, protocol+" "+result)
					mu.Unlock()
				}
				if tc.mutate != nil {
					tc.mutate(c)
				}
			})
			if tc.setup != nil {
				tc.setup(g)
			}
			op.SetFaults(tc.faults)
			op.AutoLogin(tc.subject)
			newBrowser(t).get(g.URL() + "/app")
			mu.Lock()
			defer mu.Unlock()
			if fmt.Sprint(got) != fmt.Sprint([]string{tc.want}) {
				t.Errorf("reported %q, want %q", got, tc.want)
			}
		})
	}
}

// TestObserveSignInRateLimited checks that refusals past the address's
// limit are reported as rate_limited.
func TestObserveSignInRateLimited(t *testing.T) {
	var mu sync.Mutex
	counts := map[string]int{}
	op, g := oidcSetup(t, func(c *TenantConfig) {
		c.ObserveSignIn = func(protocol, result string) {
			mu.Lock()
			counts[protocol+" "+result]++
			mu.Unlock()
		}
	})
	op.AutoLogin("sub-carol")
	for range refusalBurst + 2 {
		newBrowser(t).get(g.URL() + "/app")
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{"oidc " + SignInNotProvisioned: refusalBurst, "oidc " + SignInRateLimited: 2}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("reported %v, want %v", counts, want)
	}
}
