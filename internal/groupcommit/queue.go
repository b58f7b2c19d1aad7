// Package groupcommit owns the queue discipline of group commit, which
// the stores (storage/badgerstore, storage/postgres) share: callers that
// arrive while a group is running wait; the first of them then leads the
// next group, of at most MaxGroup, in its own goroutine, and hands the
// queue on to whoever waits after it; a caller that is not taken within
// MaxWait leaves the queue and runs alone. How a group runs (one
// transaction, savepoints, retries, what a failing member does) is the
// store's, passed in as callbacks; this package knows nothing of stores,
// transactions or tenants.
package groupcommit

import (
	"slices"
	"sync"
	"time"
)

// Outcome is what running a group says of one of its items.
type Outcome struct {
	// Err is the item's error; nil means its change committed.
	Err error
	// Alone: the item was not committed with the group; Do runs it by
	// itself, in its caller's goroutine, after the group.
	Alone bool
	// Panicked: the item's work panicked while the leader ran it; Do
	// panics again with PanicValue, in the item's caller's goroutine, so a
	// panic reaches the caller it belongs to and not the leader.
	Panicked   bool
	PanicValue any
}

// Queue is the callers waiting to be run in a group, of items of type T
// (what a store needs to run one caller's change: its context, its fn).
// The zero value with MaxGroup and MaxWait set is ready; a Queue must not
// be copied after first use.
type Queue[T any] struct {
	// MaxGroup bounds how many items one group takes.
	MaxGroup int
	// MaxWait bounds how long a caller waits to be taken into a group
	// before it leaves the queue and runs alone, beside the running group.
	// This bounds the wait behind a long group, and turns what would be a
	// deadlock (an item whose work waits for a later caller of the same
	// queue, which waits behind it) into a delay.
	MaxWait time.Duration
	// AloneWhenIdle: a caller that finds no group running runs alone at
	// once, without queueing or allocating, so a lone writer pays nothing
	// for group commit (callers arriving meanwhile queue behind it).
	// Without it that caller leads a group of itself and of whoever queued
	// by the time it takes the group.
	AloneWhenIdle bool

	mu      sync.Mutex
	waiting []*waiter[T]
	running bool // a caller runs (a group or alone); waiting[0] leads next

	// The running group's members, items and outcomes: the leader's alone
	// (there is one at a time, and the queue passes from one to the next
	// under mu), reused from group to group so that leading allocates
	// nothing.
	group    []*waiter[T]
	items    []T
	outcomes []Outcome
}

// waiter is one caller in the queue. It is told once, by whoever sets
// leads or outcome just before: to lead the next group (handOff), or
// that its group ran (its leader). Never both: only the leader takes
// waiters from the queue, and the one handed the lead leads its own
// group.
type waiter[T any] struct {
	item    T
	told    chan struct{}
	leads   bool
	outcome Outcome
}

// Do runs item through the queue and returns the caller's outcome: item
// either runs alone (runAlone, in this goroutine) or as one of a group
// (runGroup, in the goroutine of the group's leader, which may be this
// one). runGroup gets the group's items, this caller's among them, and
// fills outcomes[i] for items[i]; it runs in its leader's goroutine, and
// when it returns the leader tells each member its outcome and hands the
// queue to the first caller waiting, so no caller runs others' groups
// after its own. runGroup must not keep items or outcomes: the next
// group reuses them.
func (q *Queue[T]) Do(item T, runGroup func(items []T, outcomes []Outcome), runAlone func(T) error) error {
	q.mu.Lock()
	if q.AloneWhenIdle && !q.running {
		q.running = true
		q.mu.Unlock()
		defer q.handOff()
		return runAlone(item)
	}
	w := &waiter[T]{item: item, told: make(chan struct{}, 1)}
	q.waiting = append(q.waiting, w)
	leading := !q.running
	q.running = true
	q.mu.Unlock()

	if !leading {
		wait := time.NewTimer(q.MaxWait)
		defer wait.Stop()
		select {
		case <-w.told:
		case <-wait.C:
			q.mu.Lock()
			select {
			case <-w.told: // handed the next group, or its group ran, meanwhile
				q.mu.Unlock()
			default:
				if i := slices.Index(q.waiting, w); i >= 0 {
					q.waiting = slices.Delete(q.waiting, i, i+1)
					q.mu.Unlock()
					return runAlone(item)
				}
				q.mu.Unlock()
				<-w.told // in a group already
			}
		}
		if !w.leads {
			return finish(item, w.outcome, runAlone)
		}
	}
	// w leads: it is waiting[0], and nobody takes from the queue but the
	// leader.
	q.mu.Lock()
	n := min(len(q.waiting), q.MaxGroup)
	group := append(q.group[:0], q.waiting[:n]...)
	q.waiting = slices.Delete(q.waiting, 0, n)
	q.mu.Unlock()

	items, outcomes := q.items[:0], q.outcomes[:0]
	for _, m := range group {
		items = append(items, m.item)
		outcomes = append(outcomes, Outcome{})
	}
	runGroup(items, outcomes)
	var own Outcome
	for i, m := range group {
		if m == w {
			own = outcomes[i]
			continue
		}
		m.outcome = outcomes[i]
		m.told <- struct{}{}
	}
	// Kept for the next group, without what they refer to.
	clear(group)
	clear(items)
	clear(outcomes)
	q.group, q.items, q.outcomes = group, items, outcomes
	q.handOff()
	return finish(item, own, runAlone)
}

// handOff passes the queue to the first caller waiting, or marks it idle.
func (q *Queue[T]) handOff() {
	q.mu.Lock()
	if len(q.waiting) > 0 {
		next := q.waiting[0]
		next.leads = true
		next.told <- struct{}{}
	} else {
		q.running = false
	}
	q.mu.Unlock()
}

// finish is what Do returns (or raises) for item's outcome.
func finish[T any](item T, out Outcome, runAlone func(T) error) error {
	switch {
	case out.Panicked:
		panic(out.PanicValue)
	case out.Alone:
		return runAlone(item)
	}
	return out.Err
}
