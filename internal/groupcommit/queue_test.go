package groupcommit

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// failsafe bounds every wait of these tests on another goroutine: a test
// that reaches it has failed (a deadlock), it does not measure anything.
const failsafe = 10 * time.Second

// itemError is the error runGroup gives item i, so each caller can tell
// its own outcome from another's.
func itemError(i int) error { return fmt.Errorf("item %d", i) }

// until polls cond, a state of q that another goroutine brings about,
// within failsafe.
func until(t *testing.T, q *Queue[int], what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(failsafe)
	for {
		q.mu.Lock()
		ok := cond()
		q.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after %v", what, failsafe)
		}
		time.Sleep(time.Millisecond)
	}
}

func idle(t *testing.T, q *Queue[int]) {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.running || len(q.waiting) > 0 {
		t.Errorf("queue not idle after the calls: running %v, %d waiting", q.running, len(q.waiting))
	}
}

// TestDoIdle: a caller that finds the queue idle runs alone at once with
// AloneWhenIdle, and otherwise leads a group of itself; either way it
// gets its own outcome and leaves the queue idle.
func TestDoIdle(t *testing.T) {
	for _, aloneWhenIdle := range []bool{true, false} {
		t.Run(fmt.Sprintf("AloneWhenIdle=%v", aloneWhenIdle), func(t *testing.T) {
			q := &Queue[int]{MaxGroup: 4, MaxWait: time.Minute, AloneWhenIdle: aloneWhenIdle}
			var groups [][]int
			var alone []int
			err := q.Do(7, func(items []int, outcomes []Outcome) {
				groups = append(groups, slices.Clone(items))
				outcomes[0].Err = itemError(items[0])
			}, func(i int) error {
				alone = append(alone, i)
				return itemError(i)
			})
			if err == nil || err.Error() != itemError(7).Error() {
				t.Errorf("Do = %v, want %v", err, itemError(7))
			}
			if aloneWhenIdle {
				if len(groups) != 0 || !slices.Equal(alone, []int{7}) {
					t.Errorf("groups %v, alone %v; want it run alone only", groups, alone)
				}
			} else if len(alone) != 0 || len(groups) != 1 || !slices.Equal(groups[0], []int{7}) {
				t.Errorf("groups %v, alone %v; want one group of itself", groups, alone)
			}
			idle(t, q)
		})
	}
}

// holdQueue makes a caller (item 0) hold q: it runs (alone or as the
// leader of a group of one) until release is closed. wait waits for it.
func holdQueue(t *testing.T, q *Queue[int], release <-chan struct{}) (wait func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		hold := func() {
			select {
			case <-release:
			case <-time.After(failsafe):
				t.Error("the holder was never released")
			}
		}
		q.Do(0, func([]int, []Outcome) { hold() }, func(int) error { hold(); return nil })
	}()
	until(t, q, "held", func() bool { return q.running && len(q.waiting) == 0 })
	return func() {
		select {
		case <-done:
		case <-time.After(failsafe):
			t.Error("the holder never returned")
		}
	}
}

// TestDoGroups: callers queued behind a running one are taken in queue
// order, at most MaxGroup at a time; each group runs in the goroutine of
// its first caller (the leader), every item runs once, and each caller
// gets its own outcome.
func TestDoGroups(t *testing.T) {
	const callers = 7
	cases := []struct {
		maxGroup      int
		aloneWhenIdle bool
		want          [][]int
	}{
		{1, true, [][]int{{1}, {2}, {3}, {4}, {5}, {6}, {7}}},
		{3, true, [][]int{{1, 2, 3}, {4, 5, 6}, {7}}},
		{3, false, [][]int{{1, 2, 3}, {4, 5, 6}, {7}}},
		{16, true, [][]int{{1, 2, 3, 4, 5, 6, 7}}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("MaxGroup=%d,AloneWhenIdle=%v", c.maxGroup, c.aloneWhenIdle), func(t *testing.T) {
			q := &Queue[int]{MaxGroup: c.maxGroup, MaxWait: time.Minute, AloneWhenIdle: c.aloneWhenIdle}
			release := make(chan struct{})
			holderDone := holdQueue(t, q, release)

			var mu sync.Mutex
			var groups [][]int
			errs := make([]error, callers+1)
			var wg sync.WaitGroup
			for i := 1; i <= callers; i++ {
				wg.Go(func() {
					errs[i] = q.Do(i, func(items []int, outcomes []Outcome) {
						if items[0] != i {
							t.Errorf("caller %d ran the group %v, which it does not lead", i, items)
						}
						mu.Lock()
						groups = append(groups, slices.Clone(items))
						mu.Unlock()
						for j, item := range items {
							outcomes[j].Err = itemError(item)
						}
					}, func(i int) error {
						t.Errorf("caller %d ran alone", i)
						return nil
					})
				})
				// One at a time, so the queue's order is known.
				until(t, q, fmt.Sprintf("%d waiting", i), func() bool { return len(q.waiting) == i })
			}
			close(release)
			holderDone()
			wg.Wait()

			if !slices.EqualFunc(groups, c.want, slices.Equal) {
				t.Errorf("groups %v, want %v", groups, c.want)
			}
			for i := 1; i <= callers; i++ {
				if errs[i] == nil || errs[i].Error() != itemError(i).Error() {
					t.Errorf("caller %d got %v, want %v", i, errs[i], itemError(i))
				}
			}
			idle(t, q)
		})
	}
}

// TestDoOutcomeOfMember: what the leader's run of a group says of another
// member reaches that member's caller, in the caller's goroutine: its
// error, a run alone (runAlone, after the group), or its panic.
func TestDoOutcomeOfMember(t *testing.T) {
	errAlone := errors.New("ran alone")
	errMember := errors.New("the member's own error")
	cases := []struct {
		name      string
		outcome   Outcome
		wantErr   error
		wantAlone bool
		wantPanic any
	}{
		{"committed", Outcome{}, nil, false, nil},
		{"error", Outcome{Err: errMember}, errMember, false, nil},
		{"alone", Outcome{Alone: true}, errAlone, true, nil},
		{"panic", Outcome{Panicked: true, PanicValue: "boom"}, nil, false, "boom"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := &Queue[int]{MaxGroup: 4, MaxWait: time.Minute, AloneWhenIdle: true}
			release := make(chan struct{})
			holderDone := holdQueue(t, q, release)
			runGroup := func(items []int, outcomes []Outcome) {
				for j, item := range items {
					if item == 2 {
						outcomes[j] = c.outcome
					}
				}
			}
			var ranAlone []int
			var leaderErr, memberErr error
			var memberPanic any
			var wg sync.WaitGroup
			wg.Go(func() {
				leaderErr = q.Do(1, runGroup, func(int) error {
					t.Error("the leader ran alone")
					return nil
				})
			})
			until(t, q, "1 waiting", func() bool { return len(q.waiting) == 1 })
			wg.Go(func() {
				defer func() { memberPanic = recover() }()
				memberErr = q.Do(2, runGroup, func(i int) error {
					ranAlone = append(ranAlone, i)
					return errAlone
				})
			})
			until(t, q, "2 waiting", func() bool { return len(q.waiting) == 2 })
			close(release)
			holderDone()
			wg.Wait()

			if leaderErr != nil {
				t.Errorf("leader: %v", leaderErr)
			}
			if memberErr != c.wantErr {
				t.Errorf("member: %v, want %v", memberErr, c.wantErr)
			}
			if memberPanic != c.wantPanic {
				t.Errorf("member panicked with %v, want %v", memberPanic, c.wantPanic)
			}
			if got := len(ranAlone) == 1; got != c.wantAlone {
				t.Errorf("member ran alone: %v, want %v", ranAlone, c.wantAlone)
			}
			idle(t, q)
		})
	}
}

// TestDoWaitBound: a caller that is not taken into a group within MaxWait
// leaves the queue and runs alone beside the running one, so an item that
// waits for a later caller of its own queue is delayed, not deadlocked.
func TestDoWaitBound(t *testing.T) {
	for _, aloneWhenIdle := range []bool{true, false} {
		t.Run(fmt.Sprintf("AloneWhenIdle=%v", aloneWhenIdle), func(t *testing.T) {
			q := &Queue[int]{MaxGroup: 4, MaxWait: 10 * time.Millisecond, AloneWhenIdle: aloneWhenIdle}
			var inner error
			nested := func() {
				inner = q.Do(2, func([]int, []Outcome) {
					t.Error("the nested caller ran a group")
				}, func(int) error { return itemError(2) })
			}
			outer := q.Do(1, func(items []int, outcomes []Outcome) { nested() }, func(int) error {
				nested()
				return nil
			})
			if outer != nil || inner == nil || inner.Error() != itemError(2).Error() {
				t.Errorf("outer %v, nested %v; want nil, %v", outer, inner, itemError(2))
			}
			idle(t, q)
		})
	}
}

// TestDoConcurrent: many callers with a wait bound short enough that some
// leave the queue while others are taken (some groups outlast it) or
// handed the lead: every item
// runs exactly once (in a group or alone), every caller gets its own
// outcome, and the queue ends idle. Run it with -race.
func TestDoConcurrent(t *testing.T) {
	const callers, calls = 8, 200
	for _, aloneWhenIdle := range []bool{true, false} {
		t.Run(fmt.Sprintf("AloneWhenIdle=%v", aloneWhenIdle), func(t *testing.T) {
			q := &Queue[int]{MaxGroup: 3, MaxWait: 50 * time.Microsecond, AloneWhenIdle: aloneWhenIdle}
			var mu sync.Mutex
			inGroup, alone := make(map[int]int), make(map[int]int)
			runGroup := func(items []int, outcomes []Outcome) {
				if items[0]%7 == 0 {
					// Outlast the members' wait bound: they are taken
					// already, so they wait for the group.
					time.Sleep(4 * q.MaxWait)
				}
				mu.Lock()
				defer mu.Unlock()
				for j, item := range items {
					inGroup[item]++
					if item%3 == 0 {
						outcomes[j].Alone = true // as Badger does with a failing fn
						continue
					}
					outcomes[j].Err = itemError(item)
				}
			}
			runAlone := func(item int) error {
				mu.Lock()
				alone[item]++
				mu.Unlock()
				runtime.Gosched() // let others queue behind it
				return itemError(item)
			}
			var wg sync.WaitGroup
			for c := range callers {
				wg.Go(func() {
					for n := range calls {
						item := c*calls + n
						if err := q.Do(item, runGroup, runAlone); err == nil || err.Error() != itemError(item).Error() {
							t.Errorf("item %d: %v", item, err)
						}
					}
				})
			}
			wg.Wait()
			grouped := 0
			for item := range callers * calls {
				g, a := inGroup[item], alone[item]
				grouped += g
				// Taken into a group once, or run alone once (it left the
				// queue); an item set alone by its group runs alone after.
				ok := g+a == 1 || (item%3 == 0 && g == 1 && a == 1)
				if !ok {
					t.Errorf("item %d ran %d times in a group, %d alone", item, g, a)
				}
			}
			t.Logf("%d of %d calls were taken into groups", grouped, callers*calls)
			idle(t, q)
		})
	}
}
