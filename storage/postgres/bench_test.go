package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// BenchmarkCreateUser: one PutUser per Update (a SCIM POST /Users), each
// commit synchronous, from c goroutines creating their own users. With one
// tenant they all bump its change version; with a tenant each they do not
// contend at all, which shows what the version row costs. Reports the
// serialization retries per create.
func BenchmarkCreateUser(b *testing.B) {
	for _, c := range []struct {
		workers int
		tenants bool
	}{{1, false}, {16, false}, {16, true}} {
		name := fmt.Sprintf("concurrency=%d", c.workers)
		if c.tenants {
			name += "/tenant-each"
		}
		b.Run(name, func(b *testing.B) {
			s := openStore(b, newDatabase(b), Options{PoolSize: c.workers + 2})
			var n atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := range c.workers {
				tenant := "acme"
				if c.tenants {
					tenant = fmt.Sprintf("t%d", w)
				}
				wg.Go(func() {
					for i := n.Add(1); i <= int64(b.N); i = n.Add(1) {
						id := fmt.Sprintf("u%09d", i)
						err := s.Update(context.Background(), tenant, func(tx storage.Tx) error {
							return tx.PutUser(&storage.User{ID: id, UserName: id, Emails: []string{id + "@example.com"}})
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(s.retries.Load())/float64(b.N), "retries/op")
			b.ReportMetric(float64(s.grouped.Load())/float64(b.N), "grouped/op")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "users/s")
		})
	}
}

// benchUsers is how many users the read benchmarks load.
const benchUsers = 20_000

// loadBenchUsers opens a store holding benchUsers users (random ids, as
// generated ones are, so spread over the id buckets UserIDAt steps by;
// userName "Useru000000"…), each a member of two of 200 groups.
func loadBenchUsers(b *testing.B) *Store {
	s := openStore(b, newDatabase(b), Options{})
	ctx := context.Background()
	err := s.Update(ctx, "acme", func(tx storage.Tx) error {
		for g := range 200 {
			if err := tx.PutGroup(&storage.Group{ID: fmt.Sprintf("g%03d", g), DisplayName: fmt.Sprintf("Group %d", g)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for start := 0; start < benchUsers; start += 5000 {
		err := s.Update(ctx, "acme", func(tx storage.Tx) error {
			for i := start; i < start+5000; i++ {
				id, name := storage.NewID(), fmt.Sprintf("Useru%06d", i)
				if err := tx.PutUser(&storage.User{ID: id, UserName: name, Emails: []string{name + "@example.com"}}); err != nil {
					return err
				}
				for _, g := range []int{i % 200, (i + 7) % 200} {
					if _, err := tx.AddMember(fmt.Sprintf("g%03d", g), storage.Member{ID: id, Type: storage.MemberUser}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkUserByUserName: the lookup of `userName eq` among 20,000 users.
func BenchmarkUserByUserName(b *testing.B) {
	const users = benchUsers
	s := loadBenchUsers(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("userU%06d", i%users)
		err := s.View(ctx, "acme", func(tx storage.ReadTx) error {
			_, err := tx.UserByUserName(name)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUserPage: what a SCIM GET /Users page of 100 at a random
// startIndex reads, in one View: the id before the page, then the page's
// users and their groups, as UserPage (one statement) and, to compare, as
// ScanUsers and GroupsOfEach (two; what a page read before UserPage).
func BenchmarkUserPage(b *testing.B) {
	s := loadBenchUsers(b)
	ctx := context.Background()
	pages := map[string]func(tx storage.ReadTx, after string) (int, error){
		"UserPage": func(tx storage.ReadTx, after string) (int, error) {
			users, groups, err := tx.UserPage(after, 100)
			if len(users) != 100 {
				return 0, fmt.Errorf("page of %d users", len(users))
			}
			return len(groups), err
		},
		"ScanUsers+GroupsOfEach": func(tx storage.ReadTx, after string) (int, error) {
			var ids []string
			err := tx.ScanUsers(after, func(u *storage.User) (bool, error) {
				ids = append(ids, u.ID)
				return len(ids) < 100, nil
			})
			if err != nil {
				return 0, err
			}
			each, err := tx.GroupsOfEach(ids)
			return len(each), err
		},
	}
	for _, name := range []string{"UserPage", "ScanUsers+GroupsOfEach"} {
		page := pages[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			for i := 0; b.Loop(); i++ {
				at := (i * 7919) % (benchUsers - 100)
				err := s.View(ctx, "acme", func(tx storage.ReadTx) error {
					after, err := tx.UserIDAt(at)
					if err != nil {
						return err
					}
					n, err := page(tx, after)
					if err == nil && n != 100 {
						err = fmt.Errorf("groups of %d users", n)
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// reportCPU reports the process's CPU time (user and system) per op from
// now to the call of the function it returns: the client's cost of an op,
// apart from the server's (another process) and from waiting, which on a
// shared machine moves wall time far more than CPU time.
func reportCPU(b *testing.B) func() {
	before := processCPU()
	return func() {
		b.ReportMetric(float64((processCPU()-before).Microseconds())/float64(b.N), "cpu-µs/op")
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkChangeFeedDelay: from a committed write on store A to store B's
// Generation showing it (notifications healthy); reports p50/p99.
func BenchmarkChangeFeedDelay(b *testing.B) {
	db := newDatabase(b)
	a := openStore(b, db, Options{})
	r := openStore(b, db, Options{PollInterval: time.Hour})
	if _, ok := waitFor(10*time.Second, func() bool { return r.Feed().Listening }); !ok {
		b.Fatal("B never started listening")
	}
	var delays []time.Duration
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("u%09d", i)
		if err := a.Update(context.Background(), "acme", func(tx storage.Tx) error {
			return tx.PutUser(&storage.User{ID: id, UserName: id})
		}); err != nil {
			b.Fatal(err)
		}
		v := a.Generation("acme")
		d, ok := waitFor(10*time.Second, func() bool { return r.Generation("acme") >= v })
		if !ok {
			b.Fatalf("B never saw version %d", v)
		}
		delays = append(delays, d)
	}
	b.ReportMetric(float64(percentile(delays, 0.5).Microseconds()), "p50-µs")
	b.ReportMetric(float64(percentile(delays, 0.99).Microseconds()), "p99-µs")
}
