package directory

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/api/googleapi"
)

// retryable says whether Google's answer asks to come back later: 429, a
// 403 whose reason is a rate limit or quota, or a 5xx. It returns the
// wait Retry-After asks for (0: none given).
func retryable(err error) (bool, time.Duration) {
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		return false, 0
	}
	wait := retryAfter(ge.Header.Get("Retry-After"), time.Now())
	switch {
	case ge.Code == http.StatusTooManyRequests, ge.Code >= 500:
		return true, wait
	case ge.Code == http.StatusForbidden:
		for _, e := range ge.Errors {
			switch e.Reason {
			case "userRateLimitExceeded", "rateLimitExceeded", "quotaExceeded":
				return true, wait
			}
		}
	}
	return false, 0
}

// retryAfter reads a Retry-After value: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// backoff is the wait before attempt n+1 (n from 0): full jitter over an
// exponentially growing ceiling, so many tenants throttled at once do not
// come back in step.
func (p RetryPolicy) backoff(n int) time.Duration {
	ceiling := p.Base << min(n, 20)
	if ceiling > p.Max || ceiling <= 0 {
		ceiling = p.Max
	}
	return time.Duration(rand.Int64N(int64(ceiling)) + 1)
}

// call runs do until it succeeds, fails for good, or runs out of attempts.
func (s *Syncer) call(ctx context.Context, do func() error) error {
	p := s.cfg.Retry
	for n := 0; ; n++ {
		err := do()
		if err == nil {
			return nil
		}
		if te := asTokenError(err); te != err {
			return te
		}
		again, wait := retryable(err)
		if !again || n+1 >= p.Attempts {
			return err
		}
		if wait > 0 {
			wait = min(wait, p.MaxRetryAfter)
		} else {
			wait = p.backoff(n)
		}
		s.retries.Add(1)
		s.cfg.Logger.Debug("google api answer retried", retryFields(err, wait)...)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
