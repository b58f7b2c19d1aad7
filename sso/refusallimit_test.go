package sso

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

func TestRefusalLimiter(t *testing.T) {
	l := newRefusalLimiter()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var recorded []refusalVerdict
	for i := 0; i < refusalBurst+5; i++ {
		v := l.refused("192.0.2.1", "", "oidc", "bad", t0.Add(time.Duration(i)*time.Millisecond))
		if v.limited != (i >= refusalBurst) {
			t.Fatalf("refusal %d: limited = %v", i, v.limited)
		}
		if v.limited && (v.retryAfter <= 0 || v.retryAfter > refusalRefill) {
			t.Fatalf("refusal %d: retry after %s", i, v.retryAfter)
		}
		if v.record {
			recorded = append(recorded, v)
		}
	}
	if len(recorded) != 1 || recorded[0].count != 1 {
		t.Fatalf("recorded %+v, want the first refusal only", recorded)
	}
	// Another address, and a known user from the same address, are
	// recorded on their own; the user's refusal is limited by the
	// address's bucket all the same.
	if v := l.refused("192.0.2.2", "", "oidc", "bad", t0); !v.record || v.limited {
		t.Fatalf("another address: %+v", v)
	}
	if v := l.refused("192.0.2.1", "user-1", "oidc", "inactive", t0.Add(time.Second)); !v.record || !v.limited || v.count != 1 {
		t.Fatalf("known user from a limited address: %+v", v)
	}
	// A window later the count covers every refusal since the record.
	v := l.refused("192.0.2.1", "", "oidc", "bad", t0.Add(refusalWindow))
	if !v.record || v.count != refusalBurst+5 || !v.since.Equal(t0.Add(time.Millisecond)) {
		t.Fatalf("next window: %+v", v)
	}
	// The bucket refilled meanwhile (10 refusals a minute).
	if v.limited {
		t.Fatal("still limited after a window")
	}
}

func TestRefusalLimiterFlushAndBound(t *testing.T) {
	l := newRefusalLimiter()
	l.max = 3
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 3; i++ {
		l.refused("192.0.2.1", "", "saml", "bad "+strconv.Itoa(i), t0)
	}
	if due := l.dueTallies(t0.Add(time.Second), 10); len(due) != 0 {
		t.Fatalf("due before a window: %+v", due)
	}
	due := l.dueTallies(t0.Add(refusalWindow), 10)
	if len(due) != 1 || due[0].pending != 2 || due[0].lastReason != "bad 2" || due[0].client != "192.0.2.1" {
		t.Fatalf("due: %+v", due)
	}
	if again := l.dueTallies(t0.Add(refusalWindow), 10); len(again) != 0 {
		t.Fatalf("flushed twice: %+v", again)
	}
	for i := 0; i < 10; i++ {
		l.refused(fmt.Sprintf("198.51.100.%d", i), "", "saml", "bad", t0)
	}
	if l.buckets.len() > 3 || l.tallies.len() > 3 {
		t.Fatalf("the limiter holds %d buckets and %d tallies past its bound", l.buckets.len(), l.tallies.len())
	}
}

// TestGarbageCallbacksAreLimited: past the burst an address's refusals get
// 429 with Retry-After, and one signin.refused event stands for many.
func TestGarbageCallbacksAreLimited(t *testing.T) {
	op, g := oidcSetup(t, nil)
	g.putUser(&storage.User{UserName: "alice@acme.test", Active: true})
	b := newBrowser(t)
	for i := 0; i < refusalBurst+5; i++ {
		p := b.get(g.URL() + "/sso" + PathOIDCCallback + "?" + url.Values{"state": {newRandom()}, "code": {"x"}}.Encode())
		want := http.StatusBadRequest
		if i >= refusalBurst {
			want = http.StatusTooManyRequests
		}
		if p.status != want {
			t.Fatalf("callback %d: %d, want %d", i, p.status, want)
		}
		if want == http.StatusTooManyRequests {
			if s, err := strconv.Atoi(p.header.Get("Retry-After")); err != nil || s < 1 || s > 6 {
				t.Fatalf("Retry-After %q", p.header.Get("Retry-After"))
			}
			mustContain(t, "page", p.body, "Too many sign-in attempts")
		}
	}
	if n := len(g.events(storage.EventSignInRefused)); n != 1 {
		t.Fatalf("%d signin.refused events", n)
	}
	// A real sign-in from the same address goes through.
	op.AutoLogin("sub-alice")
	mustContain(t, "sign-in", b.get(g.URL()+"/app").body, "app page /app for alice@acme.test")

	g.nextRefusalWindow()
	b.get(g.URL() + "/sso" + PathOIDCCallback)
	evs := g.events(storage.EventSignInRefused)
	if len(evs) != 2 || !strings.Contains(evs[0].Reason, fmt.Sprintf("(%d refusals from 127.0.0.1 since ", refusalBurst+5)) {
		t.Fatalf("events: %+v", evs)
	}
}

// TestRefusalRecordBudget: refusals from ever new addresses get at most
// refusalRecordBudget records a window; the rest are counted for one
// summary event (found by review: rotating addresses bought a store write
// per refusal).
func TestRefusalRecordBudget(t *testing.T) {
	l := newRefusalLimiter()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const addresses = 500
	records := 0
	for i := 0; i < addresses; i++ {
		if v := l.refused(fmt.Sprintf("2001:db8:%x::/64", i), "", "oidc", "bad", t0); v.record {
			records++
		}
	}
	if records != refusalRecordBudget {
		t.Fatalf("%d records for %d addresses, want the budget of %d", records, addresses, refusalRecordBudget)
	}
	if n, since := l.takeOverBudget(); n != addresses-refusalRecordBudget || !since.Equal(t0) {
		t.Fatalf("over budget %d since %v, want %d since %v", n, since, addresses-refusalRecordBudget, t0)
	}
	if n, _ := l.takeOverBudget(); n != 0 {
		t.Fatalf("the over-budget count was not cleared: %d", n)
	}
	// Budget-skipped keys are not flushed one event each.
	if due := l.dueTallies(t0.Add(refusalWindow), 1000); len(due) != 0 {
		t.Fatalf("%d tallies due, want none", len(due))
	}
	// The next window has a budget again.
	if v := l.refused("198.51.100.7", "", "oidc", "bad", t0.Add(refusalWindow)); !v.record {
		t.Fatal("no record in the next window")
	}
}

// TestRefusalLimiterSignalsUnrecorded: the limiter wakes flushRefusals
// only when a refusal is left out of a record (and says so until the
// flush takes it), so a tenant nobody is refused at keeps no timer.
func TestRefusalLimiterSignalsUnrecorded(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	signalled := func(l *refusalLimiter) bool {
		select {
		case <-l.unrecorded:
			return true
		default:
			return false
		}
	}
	tests := []struct {
		name       string
		refusals   int // from one address, a millisecond apart
		wantSignal bool
	}{
		{"none", 0, false},
		{"one, recorded at once", 1, false},
		{"three, two left unrecorded", 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newRefusalLimiter()
			for i := 0; i < tt.refusals; i++ {
				l.refused("192.0.2.1", "", "oidc", "bad", t0.Add(time.Duration(i)*time.Millisecond))
			}
			if got := signalled(l); got != tt.wantSignal {
				t.Fatalf("signalled = %v, want %v", got, tt.wantSignal)
			}
			if got := l.hasUnrecorded(); got != tt.wantSignal {
				t.Fatalf("hasUnrecorded = %v, want %v", got, tt.wantSignal)
			}
			l.dueTallies(t0.Add(refusalWindow+time.Second), 10)
			if l.hasUnrecorded() {
				t.Fatal("hasUnrecorded after the flush took every due tally")
			}
		})
	}
	// Over the tenant's record budget: counted, signalled, and pending
	// until takeOverBudget.
	l := newRefusalLimiter()
	for i := 0; i <= refusalRecordBudget; i++ {
		l.refused(fmt.Sprintf("198.51.100.%d", i), "", "oidc", "bad", t0)
	}
	if !signalled(l) || !l.hasUnrecorded() {
		t.Fatal("a refusal over the budget was not signalled")
	}
	l.takeOverBudget()
	if l.hasUnrecorded() {
		t.Fatal("hasUnrecorded after takeOverBudget")
	}
}
