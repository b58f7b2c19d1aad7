package groupcommit

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkQueueDo: the queue's own cost per call, its groups doing no
// work, by 1 caller (the lone writer, with and without AloneWhenIdle) and
// by 16 concurrent callers, whose groups then form.
func BenchmarkQueueDo(b *testing.B) {
	runGroup := func(items []int, outcomes []Outcome) {}
	runAlone := func(int) error { return nil }
	for _, c := range []struct {
		callers       int
		aloneWhenIdle bool
	}{{1, true}, {1, false}, {16, true}, {16, false}} {
		b.Run(fmt.Sprintf("callers-%d/AloneWhenIdle=%v", c.callers, c.aloneWhenIdle), func(b *testing.B) {
			q := &Queue[int]{MaxGroup: 16, MaxWait: time.Second, AloneWhenIdle: c.aloneWhenIdle}
			b.ReportAllocs()
			if c.callers == 1 {
				for i := 0; b.Loop(); i++ {
					q.Do(i, runGroup, runAlone)
				}
				return
			}
			b.SetParallelism((c.callers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					q.Do(i, runGroup, runAlone)
				}
			})
		})
	}
}
