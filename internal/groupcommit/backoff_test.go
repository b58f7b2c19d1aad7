package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestBackoffDelay: the wait before the next attempt is jittered over a
// window that doubles from Base each attempt, up to Max, and is never
// zero (so a timer always runs).
func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: 500 * time.Microsecond, Max: 50 * time.Millisecond}
	cases := []struct {
		attempt int
		window  time.Duration
	}{
		{1, 500 * time.Microsecond},
		{2, time.Millisecond},
		{3, 2 * time.Millisecond},
		{7, 32 * time.Millisecond},
		{8, 50 * time.Millisecond},
		{11, 50 * time.Millisecond},
		{200, 50 * time.Millisecond}, // the shift is capped: no overflow
	}
	for _, c := range cases {
		t.Run(fmt.Sprint("attempt ", c.attempt), func(t *testing.T) {
			var largest time.Duration
			for range 1000 {
				d := b.delay(c.attempt)
				if d < time.Microsecond || d >= c.window+time.Microsecond {
					t.Fatalf("delay %v, want in [1µs, %v)", d, c.window+time.Microsecond)
				}
				largest = max(largest, d)
			}
			// Jitter spreads over the window, not just its start.
			if largest < c.window/2 {
				t.Errorf("largest of 1000 delays %v, window %v", largest, c.window)
			}
		})
	}
}

// TestBackoffWait: Wait returns once its timer runs, again and again with
// the one timer, and with the context's error as soon as the context ends.
func TestBackoffWait(t *testing.T) {
	b := Backoff{Base: time.Microsecond, Max: time.Microsecond}
	defer b.Stop()
	for attempt := 1; attempt <= 3; attempt++ {
		if err := b.Wait(context.Background(), attempt); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}

	long := Backoff{Base: time.Hour, Max: time.Hour}
	defer long.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := long.Wait(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with an ended context: %v, want %v", err, context.Canceled)
	}
}
