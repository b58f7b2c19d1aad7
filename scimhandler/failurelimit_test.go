package scimhandler

import (
	"fmt"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/clientaddr"
)

func TestFailureLimiterBucket(t *testing.T) {
	l := newFailureLimiter()
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	steps := []struct {
		at         time.Duration // after t0
		limited    bool
		retryAfter time.Duration
		inWindow   int
	}{
		{0, false, 0, 1}, {0, false, 0, 2}, {0, false, 0, 3}, {0, false, 0, 4}, {0, false, 0, 5},
		{0, false, 0, 6}, {0, false, 0, 7}, {0, false, 0, 8}, {0, false, 0, 9}, {0, false, 0, 10},
		{0, true, 6 * time.Second, 11},                    // burst spent
		{3 * time.Second, true, 3 * time.Second, 12},      // half a refill
		{6 * time.Second, false, 0, 13},                   // one refilled
		{6 * time.Second, true, 6 * time.Second, 14},      // and spent
		{59 * time.Second, false, 0, 15},                  // 53 s refill 8
		{time.Minute, false, 0, 1},                        // a new audit window
		{time.Minute + 100*time.Millisecond, false, 0, 2}, // ...
		{10 * time.Minute, false, 0, 1},                   // refilled to the burst, not beyond
	}
	for i, s := range steps {
		v := l.failure("192.0.2.1:5000", t0.Add(s.at))
		if v.limited != s.limited || v.inWindow != s.inWindow || (s.limited && v.retryAfter != s.retryAfter) {
			t.Fatalf("step %d (+%v): limited %v retryAfter %v inWindow %d, want %v %v %d",
				i, s.at, v.limited, v.retryAfter, v.inWindow, s.limited, s.retryAfter, s.inWindow)
		}
	}
	// Refilled to the burst and no further: 10 more, then limited.
	at := t0.Add(10 * time.Minute)
	for i := 0; i < failureBurst-1; i++ {
		if v := l.failure("192.0.2.1", at); v.limited {
			t.Fatalf("failure %d after a long pause is limited", i+2)
		}
	}
	if v := l.failure("192.0.2.1", at); !v.limited {
		t.Fatal("the bucket refilled beyond its burst")
	}
	// Another address has its own bucket.
	if v := l.failure("192.0.2.2", at); v.limited {
		t.Fatal("another address is limited")
	}
}

func TestFailureLimiterReports(t *testing.T) {
	l := newFailureLimiter()
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	if v := l.failure("192.0.2.1", t0); !v.report || v.unreported != 0 {
		t.Fatalf("first failure: %+v, want a report with nothing unreported", v)
	}
	// 14 more from .1 (the last 5 of them limited) and 3 from .2 and .3,
	// within the minute: none reported.
	for i := 0; i < 14; i++ {
		if v := l.failure("192.0.2.1", t0.Add(time.Second)); v.report {
			t.Fatalf("failure %d within the minute is reported", i+2)
		}
	}
	for _, a := range []string{"192.0.2.2", "192.0.2.3", "192.0.2.2"} {
		if v := l.failure(a, t0.Add(2*time.Second)); v.report {
			t.Fatalf("%s within the minute is reported", a)
		}
	}
	v := l.failure("192.0.2.4", t0.Add(time.Minute))
	if !v.report || v.unreported != 17 || v.unreportedClients != 3 || v.unreportedLimited != 5 || v.client != "192.0.2.4" {
		t.Fatalf("report after a minute: %+v, want 17 unreported from 3 clients, 5 limited", v)
	}
	// .1 failed in the previous period: it counts again in the next one.
	l.failure("192.0.2.1", t0.Add(61*time.Second))
	l.failure("192.0.2.1", t0.Add(62*time.Second))
	if v := l.failure("192.0.2.5", t0.Add(2*time.Minute)); v.unreported != 2 || v.unreportedClients != 1 {
		t.Fatalf("second report: %+v, want 2 unreported from 1 client", v)
	}
}

// TestFailureLimiterMemoryBound: addresses beyond maxTrackedClients push
// out the least recently failing ones, and an address that keeps failing
// stays limited through the churn.
func TestFailureLimiterMemoryBound(t *testing.T) {
	l := newFailureLimiter()
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	const attacker = "198.51.100.66"
	for i := 0; i < failureBurst; i++ {
		l.failure(attacker, now)
	}
	for i := 0; i < 3*maxTrackedClients; i++ {
		l.failure(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), now)
		if i%1000 == 0 {
			if v := l.failure(attacker, now); !v.limited {
				t.Fatalf("after %d other addresses the attacker is no longer limited", i)
			}
		}
		if n := l.tracked(); n > maxTrackedClients {
			t.Fatalf("%d addresses tracked, bound %d", n, maxTrackedClients)
		}
	}
	if n, m := l.tracked(), l.recent.Len(); n != maxTrackedClients || m != n {
		t.Fatalf("tracked %d, list %d, want %d", n, m, maxTrackedClients)
	}
	// The oldest addresses were forgotten, the newest kept.
	if _, ok := l.clients["10.0.0.0"]; ok {
		t.Error("the least recent address is still tracked")
	}
	if _, ok := l.clients[clientaddr.Key(fmt.Sprintf("10.0.%d.%d", (3*maxTrackedClients-1)>>8&255, (3*maxTrackedClients-1)&255))]; !ok {
		t.Error("the most recent address is not tracked")
	}
}
