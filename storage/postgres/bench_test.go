package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
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

// BenchmarkUserByUserName: the lookup of `userName eq` among 20,000 users.
func BenchmarkUserByUserName(b *testing.B) {
	const users = 20_000
	s := openStore(b, newDatabase(b), Options{})
	ctx := context.Background()
	for start := 0; start < users; start += 5000 {
		err := s.Update(ctx, "acme", func(tx storage.Tx) error {
			for i := start; i < start+5000; i++ {
				id := fmt.Sprintf("u%06d", i)
				if err := tx.PutUser(&storage.User{ID: id, UserName: "User" + id}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
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
