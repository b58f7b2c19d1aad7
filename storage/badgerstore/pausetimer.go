package badgerstore

import "time"

// pauseTimer is the one timer a background loop of the store waits on
// between its runs (the compactor, the trimmer of mapped pages), made at
// the first wait and reused.
type pauseTimer struct{ t *time.Timer }

// wait waits d, or until stop closes; false then.
func (p *pauseTimer) wait(stop <-chan struct{}, d time.Duration) bool {
	if p.t == nil {
		p.t = time.NewTimer(d)
	} else {
		p.t.Reset(d)
	}
	select {
	case <-stop:
		return false
	case <-p.t.C:
		return true
	}
}

// stop releases the timer.
func (p *pauseTimer) stop() {
	if p.t != nil {
		p.t.Stop()
	}
}
