package badgerstore_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
)

// The 100k benchmarks share one loaded store: loading takes seconds and the
// framework calls each benchmark function more than once.
const (
	fixtureUsers  = 100_000
	fixtureGroups = 1_000
	loadBatch     = 1_000
	benchTenant   = "acme"
)

var fixture struct {
	once sync.Once
	dir  string
	s    *badgerstore.Store
	err  error
	// loadRSS and loadHeap are measured right after loading, before the
	// store is reopened.
	loadRSS, loadHeap uint64
	loadTime          time.Duration
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.s != nil {
		fixture.s.Close()
	}
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

// userAttributes is a SCIM representation of typical size (~600 bytes), so
// the figures reflect real records rather than bare ids.
func benchUser(i int) *storage.User {
	name := fmt.Sprintf("user%06d@example.com", i)
	attrs, _ := json.Marshal(map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
		"userName": name,
		"name":     map[string]string{"givenName": "Given" + strconv.Itoa(i), "familyName": "Family" + strconv.Itoa(i), "formatted": "Given Family"},
		"emails":   []map[string]any{{"value": name, "type": "work", "primary": true}},
		"title":    "Engineer",
		"active":   true,
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{
			"employeeNumber": strconv.Itoa(i), "department": "Department " + strconv.Itoa(i%50),
			"manager": map[string]string{"value": "manager-id"},
		},
	})
	return &storage.User{
		ID:          storage.NewID(),
		UserName:    name,
		ExternalID:  "ext-" + strconv.Itoa(i),
		DisplayName: "Given Family",
		Emails:      []string{name},
		Active:      true,
		Source:      storage.SourceSCIM,
		Attributes:  attrs,
	}
}

func loadFixture(b *testing.B) *badgerstore.Store {
	b.Helper()
	fixture.once.Do(func() {
		fixture.dir, fixture.err = os.MkdirTemp("", "badgerstore-bench-*")
		if fixture.err != nil {
			return
		}
		s, err := badgerstore.Open(fixture.dir, zap.NewNop())
		if err != nil {
			fixture.err = err
			return
		}
		start := time.Now()
		ctx := context.Background()
		for lo := 0; lo < fixtureUsers; lo += loadBatch {
			err := s.Update(ctx, benchTenant, func(tx storage.Tx) error {
				for i := lo; i < lo+loadBatch; i++ {
					if err := tx.PutUser(benchUser(i)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				fixture.err = fmt.Errorf("loading users %d..: %w", lo, err)
				s.Close()
				return
			}
		}
		err = s.Update(ctx, benchTenant, func(tx storage.Tx) error {
			for i := range fixtureGroups {
				if err := tx.PutGroup(&storage.Group{ID: storage.NewID(), DisplayName: fmt.Sprintf("Group %d", i), Source: storage.SourceSCIM}); err != nil {
					return err
				}
			}
			return nil
		})
		fixture.loadTime = time.Since(start)
		if err != nil {
			fixture.err = err
			s.Close()
			return
		}
		runtime.GC()
		fixture.loadRSS, fixture.loadHeap = vmRSS(), heapInuse()
		// Measure the steady state a restarted gateway has: close, give
		// the garbage of the load back, reopen.
		if err := s.Close(); err != nil {
			fixture.err = err
			return
		}
		debug.FreeOSMemory()
		// Trimming of mapped pages off: BenchmarkMemory100k measures the
		// pages before and after a trim of its own.
		fixture.s, fixture.err = badgerstore.OpenWithOptions(fixture.dir, zap.NewNop(), badgerstore.Options{MappedMemory: -1})
	})
	if fixture.err != nil {
		b.Fatalf("fixture: %v", fixture.err)
	}
	return fixture.s
}

// procStatus reads a size field (e.g. "VmRSS") of /proc/self/status in bytes.
func procStatus(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// vmRSS is the process's resident set size: anonymous memory (Go heap,
// stacks) plus touched pages of mmap'd files (Badger's tables and logs).
func vmRSS() uint64 { return procStatus("VmRSS") }

func heapInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// diskUsage is the space the files in dir whose name ends in ext ("" for
// all) take on disk: allocated blocks, not apparent size, because Badger
// preallocates its log files sparsely.
func diskUsage(dir, ext string) uint64 {
	var n uint64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), ext) {
			if info, err := d.Info(); err == nil {
				if st, ok := info.Sys().(*syscall.Stat_t); ok {
					n += uint64(st.Blocks) * 512
				}
			}
		}
		return nil
	})
	return n
}

const mib = 1 << 20

// BenchmarkUserByUserName100k: one case-insensitive userName lookup (what
// `filter=userName eq "x"` costs in storage) in its own View, with 100,000
// users stored.
func BenchmarkUserByUserName100k(b *testing.B) {
	s := loadFixture(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		name := fmt.Sprintf("USER%06d@example.com", (i*7919)%fixtureUsers)
		i++
		err := s.View(ctx, benchTenant, func(tx storage.ReadTx) error {
			u, err := tx.UserByUserName(name)
			if err == nil && !strings.EqualFold(u.UserName, name) {
				err = fmt.Errorf("found %q for %q", u.UserName, name)
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCountUsers100k: CountUsers walks the user keys (no counter
// record, which would make every create conflict with every other).
func BenchmarkCountUsers100k(b *testing.B) {
	s := loadFixture(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		err := s.View(ctx, benchTenant, func(tx storage.ReadTx) error {
			n, err := tx.CountUsers()
			if err == nil && n != fixtureUsers {
				err = fmt.Errorf("CountUsers = %d", n)
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemory100k reports the process's memory with 100,000 users and
// 1,000 groups stored: rss-MiB and heap-MiB after the store was reopened
// and has served b.N lookups (a restarted gateway), with RSS split into
// anonymous memory and touched pages of Badger's mmap'd files;
// load-rss-MiB and load-heap-MiB right after loading (the process that did
// the bulk load); disk-MiB allocated on disk, of which sst-MiB is the LSM
// tree (keys, indexes, small values) and vlog-MiB the value log (records).
func BenchmarkMemory100k(b *testing.B) {
	s := loadFixture(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		name := fmt.Sprintf("user%06d@example.com", (i*104729)%fixtureUsers)
		i++
		if err := s.View(ctx, benchTenant, func(tx storage.ReadTx) error {
			_, err := tx.UserByUserName(name)
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	b.ReportMetric(float64(vmRSS())/mib, "rss-MiB")
	b.ReportMetric(float64(procStatus("RssAnon"))/mib, "rss-anon-MiB")
	b.ReportMetric(float64(procStatus("RssFile"))/mib, "rss-file-MiB")
	b.ReportMetric(float64(heapInuse())/mib, "heap-MiB")
	// What the store's trimmer (Options.MappedMemory) gives back: its
	// first step (value log and WAL), then everything.
	badgerstore.TrimValueLogPages(s)
	b.ReportMetric(float64(procStatus("RssFile"))/mib, "vlog-trimmed-rss-file-MiB")
	start := time.Now()
	badgerstore.TrimMappedPages(s)
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "trim-ms")
	b.ReportMetric(float64(vmRSS())/mib, "trimmed-rss-MiB")
	b.ReportMetric(float64(procStatus("RssFile"))/mib, "trimmed-rss-file-MiB")
	b.ReportMetric(float64(fixture.loadRSS)/mib, "load-rss-MiB")
	b.ReportMetric(float64(fixture.loadHeap)/mib, "load-heap-MiB")
	b.ReportMetric(float64(diskUsage(fixture.dir, ""))/mib, "disk-MiB")
	b.ReportMetric(float64(diskUsage(fixture.dir, ".sst"))/mib, "sst-MiB")
	b.ReportMetric(float64(diskUsage(fixture.dir, ".vlog"))/mib, "vlog-MiB")
	b.ReportMetric(fixture.loadTime.Seconds(), "load-s")
}

// BenchmarkPutUser: creating one user (plus its audit event) per durable
// Update, as a SCIM POST does, by 1 and by 16 concurrent writers.
func BenchmarkPutUser(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers-%d", writers), func(b *testing.B) {
			s, err := badgerstore.Open(b.TempDir(), zap.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var seq atomic.Int64
			put := func() error {
				u := benchUser(int(seq.Add(1)))
				return s.Update(context.Background(), benchTenant, func(tx storage.Tx) error {
					if err := tx.PutUser(u); err != nil {
						return err
					}
					return tx.AppendEvent(storage.Event{Type: storage.EventUserCreated, Actor: "bench", ResourceType: "User", ResourceID: u.ID})
				})
			}
			b.ReportAllocs()
			b.ResetTimer()
			if writers == 1 {
				for b.Loop() {
					if err := put(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "users/s")
				return
			}
			// RunParallel starts parallelism*GOMAXPROCS goroutines.
			b.SetParallelism((writers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := put(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(badgerstore.Conflicts(s))/float64(b.N), "conflicts/op")
			b.ReportMetric(float64(badgerstore.Grouped(s))/float64(b.N), "grouped/op")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "users/s")
		})
	}
}
