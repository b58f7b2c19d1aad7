//go:build linux

package badgerstore

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"
)

// niceThreads counts the process's threads at nice 19 (field 19 of
// /proc/self/task/TID/stat).
func niceThreads(t *testing.T) int {
	t.Helper()
	stats, err := filepath.Glob("/proc/self/task/*/stat")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended
		}
		// The fields after the command name, which is in parentheses.
		i := bytes.LastIndexByte(b, ')')
		fields := bytes.Fields(b[i+1:])
		if len(fields) > 16 {
			if nice, err := strconv.Atoi(string(fields[16])); err == nil && nice == 19 {
				n++
			}
		}
	}
	return n
}

// TestTrimmerRunsAtLowestPriority: a store with a mapped-memory bound runs
// its trimmer on a thread at nice 19; the control, before the store
// opens, counts none (and shows the test reads nice values at all: it
// then finds the trimmer's).
func TestTrimmerRunsAtLowestPriority(t *testing.T) {
	before := niceThreads(t)
	s, err := OpenWithOptions(t.TempDir(), zap.NewNop(), Options{MappedMemory: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var after int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if after = niceThreads(t); after > before {
			break
		}
	}
	if after != before+1 {
		t.Errorf("threads at nice 19: %d before the store opened, %d after; want one more (the trimmer)", before, after)
	}
}
