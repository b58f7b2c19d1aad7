package groupcommit

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the wait between attempts of a transaction that lost a race
// (a conflict, a serialization failure), alone or as a group: full jitter
// over a window that doubles with each attempt from Base up to Max, so
// concurrent losers spread out instead of colliding again in lock step.
// Its timer is made once and reused across the attempts of one run; Stop
// it when the run ends. The zero Backoff with Base and Max set is ready.
type Backoff struct {
	Base, Max time.Duration

	timer *time.Timer
}

// Wait sleeps before the attempt after attempt (counted from 1), or until
// ctx ends, whose error it then returns.
func (b *Backoff) Wait(ctx context.Context, attempt int) error {
	d := b.delay(attempt)
	if b.timer == nil {
		b.timer = time.NewTimer(d)
	} else {
		b.timer.Reset(d)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-b.timer.C:
		return nil
	}
}

// Stop releases the timer.
func (b *Backoff) Stop() {
	if b.timer != nil {
		b.timer.Stop()
	}
}

// delay is a random wait in [0, window) plus a microsecond, the window
// Base<<(attempt-1) capped at Max (the shift is capped too, so it cannot
// overflow).
func (b *Backoff) delay(attempt int) time.Duration {
	window := min(b.Base<<min(attempt-1, 10), b.Max)
	return time.Duration(rand.Int64N(int64(window))) + time.Microsecond
}
