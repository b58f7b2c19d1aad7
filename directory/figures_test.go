package directory_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/directory"
	"github.com/portcullis/portcullis/internal/googlefake"
)

// The figures of issue 11 run only when asked for, being a measurement,
// not a unit test:
//
//	go test ./directory -run TestFigures -figures -v
var figures = flag.Bool("figures", false, "run the sync figures (10,000 users; about a minute of activity-poll waiting)")

// bigDomain is 10,000 users and 1,000 groups of 30 random members each
// (some groups nest another).
func bigDomain(f *googlefake.Server) (users []string) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 10000 {
		users = append(users, f.AddUser(googlefake.User{
			PrimaryEmail: fmt.Sprintf("user%05d@example.com", i), GivenName: "User", FamilyName: fmt.Sprint(i),
			Aliases: []string{fmt.Sprintf("u%05d@example.com", i)}, Suspended: i%100 == 0,
		}))
	}
	var groups []string
	for i := range 1000 {
		g := f.AddGroup(googlefake.Group{Email: fmt.Sprintf("group%04d@example.com", i), Name: fmt.Sprintf("Group %04d", i)})
		groups = append(groups, g)
		for range 30 {
			f.AddUserMember(g, users[rng.IntN(len(users))])
		}
		if i%10 == 9 {
			f.AddGroupMember(g, groups[i-1])
		}
	}
	return users
}

// heapPeak samples the live heap until stopped, returning the highest.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var m runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); <-finished; return peak.Load() }
}

func TestFigures(t *testing.T) {
	if !*figures {
		t.Skip("figures run with -figures")
	}
	f := newFake(t)
	users := bigDomain(f)
	e := newEnv(t, f, nil)

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop := heapPeak()
	st := e.sync()
	peak := stop()
	t.Logf("full sync: %d users, %d groups, %d memberships in %s; %d API calls (fake: %d users pages, %d groups pages, %d members pages); heap %d MiB before, peak %d MiB (growth %d MiB, fake server included)",
		st.Counts.UsersCreated, st.Counts.GroupsCreated, st.Counts.MembershipsAdded, st.Duration.Round(time.Millisecond),
		st.Counts.APICalls, f.Calls("users"), f.Calls("groups"), f.Calls("members"),
		base.HeapAlloc>>20, peak>>20, (peak-min(peak, base.HeapAlloc))>>20)
	if st.Duration > time.Minute {
		t.Errorf("full sync took %s, goal < 60s", st.Duration)
	}

	newest := func() string { return e.events()[0].ID }
	gen, n := e.store.Generation(tenant), newest()
	st2 := e.sync()
	t.Logf("re-sync, nothing changed: %s, %d API calls, counts %+v; generation %d → %d, newest audit event %s → %s",
		st2.Duration.Round(time.Millisecond), st2.Counts.APICalls, st2.Counts, gen, e.store.Generation(tenant), n, newest())
	if e.store.Generation(tenant) != gen || newest() != n {
		t.Error("the re-sync wrote")
	}

	// Suspension to refusal with activity_poll 1m: the scheduler runs as
	// in the gateway; the user is suspended in the fake right after the
	// start-up sync (so just after a poll was scheduled a minute out: the
	// worst case but for Google's reporting lag, which the fake does not
	// add), and the delay is taken when the store no longer holds the
	// user's session, the moment the gateway refuses its next request.
	e.syncer.Stop()
	e.syncer = e.newSyncer(func(c *directory.Config) { c.ActivityPoll = time.Minute })
	e.syncer.Start()
	if _, err := e.syncer.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	victim := e.userByGoogleID(users[1])
	e.addSession(victim.ID)
	suspended := time.Now()
	f.SuspendUser(users[1])
	deadline := suspended.Add(3 * time.Minute)
	for e.sessions(victim.ID) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	delay := time.Since(suspended)
	ps := e.syncer.Status()
	t.Logf("suspension to refusal with activity_poll 1m: %s (poll at %s took part; reporting lag 0 in the fake)",
		delay.Round(time.Millisecond), ps.LastActivityPoll.Sub(suspended).Round(time.Millisecond))
	if e.sessions(victim.ID) > 0 {
		t.Error("the suspension was not applied within 3 minutes")
	}
}

// BenchmarkFullSync10k is the full sync of the figures' domain into a
// fresh store per iteration.
func BenchmarkFullSync10k(b *testing.B) {
	f := newFake(b)
	bigDomain(f)
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, f, nil)
		b.StartTimer()
		st := e.sync()
		b.ReportMetric(float64(st.Counts.APICalls), "apicalls/op")
	}
}
