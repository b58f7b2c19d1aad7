package badgerstore

import (
	"testing"

	"go.uber.org/zap"
)

// TestAutoMappedBudget: the automatic bound is a quarter of the store's
// size on disk, never under 48 MiB nor over 256 MiB.
func TestAutoMappedBudget(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		size, want int64
	}{
		{0, 48 * mib},
		{130 * mib, 48 * mib}, // a new store: one preallocated value-log file
		{192 * mib, 48 * mib},
		{400 * mib, 100 * mib},
		{1024 * mib, 256 * mib},
		{1230 * mib, 256 * mib}, // 1,000,000 users
		{64 << 30, 256 * mib},
	} {
		if got := autoMappedBudget(tt.size); got != tt.want {
			t.Errorf("size %d MiB: budget %d MiB, want %d", tt.size/mib, got/mib, tt.want/mib)
		}
	}
}

// TestMappedBudget: a bound set is the budget as it is; the automatic one
// follows the store's own count of its size.
func TestMappedBudget(t *testing.T) {
	s, err := OpenWithOptions(t.TempDir(), zap.NewNop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.mappedBudget(96 << 20); got != 96<<20 {
		t.Errorf("a bound set: budget %d, want %d", got, 96<<20)
	}
	lsm, vlog := s.db.Size()
	if got, want := s.mappedBudget(MappedMemoryAuto), autoMappedBudget(lsm+vlog); got != want {
		t.Errorf("auto: budget %d, want %d", got, want)
	}
}
