package caddymodule

import (
	"testing"
	"time"
)

func TestRevocationClock(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		op             string // start or stop
		tenant, user   string
		at             time.Duration // after t0
		wantOK         bool
		wantDur        time.Duration
		wantClocksLeft int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"start then stop measures once", []step{
			{op: "start", tenant: "acme", user: "u1", at: 0, wantClocksLeft: 1},
			{op: "stop", tenant: "acme", user: "u1", at: 150 * time.Millisecond, wantOK: true, wantDur: 150 * time.Millisecond},
			{op: "stop", tenant: "acme", user: "u1", at: time.Second, wantOK: false},
		}},
		{"a stop without a deprovisioning measures nothing", []step{
			{op: "stop", tenant: "acme", user: "u1", at: 0, wantOK: false},
		}},
		{"tenants are apart", []step{
			{op: "start", tenant: "acme", user: "u1", at: 0, wantClocksLeft: 1},
			{op: "stop", tenant: "globex", user: "u1", at: time.Second, wantOK: false, wantClocksLeft: 1},
			{op: "stop", tenant: "acme", user: "u1", at: 2 * time.Second, wantOK: true, wantDur: 2 * time.Second},
		}},
		{"the first deprovisioning keeps its start", []step{
			{op: "start", tenant: "acme", user: "u1", at: 0, wantClocksLeft: 1},
			{op: "start", tenant: "acme", user: "u1", at: time.Second, wantClocksLeft: 1},
			{op: "stop", tenant: "acme", user: "u1", at: 3 * time.Second, wantOK: true, wantDur: 3 * time.Second},
		}},
		{"a clock older than the TTL is not measured", []step{
			{op: "start", tenant: "acme", user: "u1", at: 0, wantClocksLeft: 1},
			{op: "stop", tenant: "acme", user: "u1", at: revocationClockTTL + time.Second, wantOK: false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newRevocationClock()
			for i, s := range tt.steps {
				switch s.op {
				case "start":
					c.start(s.tenant, s.user, t0.Add(s.at))
				case "stop":
					d, ok := c.stop(s.tenant, s.user, t0.Add(s.at))
					if ok != s.wantOK || d != s.wantDur {
						t.Errorf("step %d: stop = %v, %v; want %v, %v", i, d, ok, s.wantDur, s.wantOK)
					}
				}
				if n := c.running("acme"); n != s.wantClocksLeft {
					t.Errorf("step %d: %d clocks running, want %d", i, n, s.wantClocksLeft)
				}
			}
		})
	}
}

// TestRevocationClockBounded checks that a mass deprovisioning cannot grow
// the clocks past their bound, and that stale clocks make room.
func TestRevocationClockBounded(t *testing.T) {
	c := newRevocationClock()
	t0 := time.Now()
	for i := range maxRevocationClocks + 10 {
		c.start("acme", string(rune('a'+i%26))+time.Duration(i).String(), t0)
	}
	if n := c.running("acme"); n != maxRevocationClocks {
		t.Fatalf("%d clocks, want the bound %d", n, maxRevocationClocks)
	}
	c.start("acme", "late", t0.Add(revocationClockTTL+time.Minute))
	if n := c.running("acme"); n != 1 {
		t.Fatalf("%d clocks after the stale ones were dropped, want 1", n)
	}
}
