package sso

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// idpLink is what a Service knows of its IdP's published configuration
// (the OIDC discovery document, the SAML metadata) and the background work
// that keeps it: the first load retried with backoff until the IdP
// answers, then (for SAML metadata) a refresh every interval, where a
// failed refresh keeps the last good copy and is retried with the same
// backoff. An IdP that cannot be reached therefore never stops the
// Service from starting: sign-in answers 503 until the first load works,
// while sessions (which need only the store) carry on.
//
// Each change of state is logged once: "unreachable" on the first failure,
// "reachable" when a load works after failures; the attempts in between are
// logged at debug level only.
type idpLink[T any] struct {
	what    string // "oidc discovery at https://…", for the log
	load    func(ctx context.Context) (*T, error)
	refresh time.Duration // 0: no refresh once loaded
	retry   retryPolicy
	log     *zap.Logger

	current atomic.Pointer[T]
	// retryAt is when the next attempt is due (unix nanoseconds) while
	// nothing is loaded, for the Retry-After of the 503 answers.
	retryAt atomic.Int64

	firstOnce sync.Once
	firstDone chan struct{} // closed once the first attempt is over
	firstErr  error         // its error, set before firstDone closes
}

// retryPolicy is the backoff between failed attempts: Min, doubling up to
// Max, each wait jittered down by up to half so that gateways restarted
// together do not retry in step.
type retryPolicy struct {
	Min, Max time.Duration
}

// Default backoff between attempts to reach an IdP.
var defaultRetry = retryPolicy{Min: time.Second, Max: time.Minute}

// idpAttemptTimeout bounds one attempt to reach the IdP.
const idpAttemptTimeout = 30 * time.Second

func newIDPLink[T any](what string, load func(context.Context) (*T, error), refresh time.Duration, retry retryPolicy, log *zap.Logger) *idpLink[T] {
	return &idpLink[T]{what: what, load: load, refresh: refresh, retry: retry, log: log, firstDone: make(chan struct{})}
}

// set stores a loaded value (a load made before run, e.g. from a file).
func (l *idpLink[T]) set(v *T) {
	l.current.Store(v)
	l.firstOver(nil)
}

// firstOver records the outcome of the first attempt.
func (l *idpLink[T]) firstOver(err error) {
	l.firstOnce.Do(func() {
		l.firstErr = err
		close(l.firstDone)
	})
}

// get is the last good value, or nil while the IdP was never reached.
func (l *idpLink[T]) get() *T { return l.current.Load() }

// retryAfter is how long a client should wait before trying sign-in again:
// the time to the next attempt, rounded up to whole seconds, 1 to 60.
func (l *idpLink[T]) retryAfter(now time.Time) time.Duration {
	at := l.retryAt.Load()
	d := time.Duration(at - now.UnixNano())
	if at == 0 || d < time.Second {
		return time.Second
	}
	if d > time.Minute {
		return time.Minute
	}
	return d.Truncate(time.Second) + time.Second
}

// run loads (when nothing is loaded yet) and refreshes until ctx ends.
func (l *idpLink[T]) run(ctx context.Context) {
	delay := l.retry.Min
	failing := false
	if l.get() != nil {
		// Loaded before run (a metadata file): only refreshes are left.
		if !l.sleep(ctx, l.refresh) {
			return
		}
	}
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, idpAttemptTimeout)
		v, err := l.load(attemptCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			wait := l.retry.jittered(delay)
			delay = min(2*delay, l.retry.Max)
			l.retryAt.Store(time.Now().Add(wait).UnixNano())
			switch {
			case failing:
				l.log.Debug("identity provider still unreachable", zap.String("what", l.what), zap.Duration("retry_in", wait), zap.Error(err))
			case l.get() == nil:
				l.log.Warn("identity provider unreachable: sign-in answers 503 until it answers; retrying in the background",
					zap.String("what", l.what), zap.Error(err))
			default:
				l.log.Warn("identity provider refresh failed: keeping the last good copy; retrying in the background",
					zap.String("what", l.what), zap.Error(err))
			}
			failing = true
			l.firstOver(err)
			if !l.sleep(ctx, wait) {
				return
			}
			continue
		}
		l.set(v)
		delay = l.retry.Min
		if failing {
			l.log.Info("identity provider reachable again", zap.String("what", l.what))
			failing = false
		} else {
			l.log.Debug("identity provider loaded", zap.String("what", l.what))
		}
		if l.refresh <= 0 || !l.sleep(ctx, l.refresh) {
			return
		}
	}
}

// sleep waits d or until ctx ends; it reports whether to go on.
func (l *idpLink[T]) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// wait waits for the outcome of the first attempt: nil if it loaded, its
// error if it failed (the attempts go on), or ctx's error.
func (l *idpLink[T]) wait(ctx context.Context) error {
	select {
	case <-l.firstDone:
		return l.firstErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// jittered is d reduced by a random part of up to half of it.
func (p retryPolicy) jittered(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d - rand.N(d/2)
}
