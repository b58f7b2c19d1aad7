package main

import "testing"

// TestPGScaleGroups: the PostgreSQL store keeps the Badger store's groups
// per user, and a skipped Badger store (-scale-users 0) does not turn the
// ratio into -scale-groups × -pg-scale-users groups (a run that loaded a
// billion groups).
func TestPGScaleGroups(t *testing.T) {
	for _, tt := range []struct {
		users, groups, pgUsers, want int
	}{
		{1_000_000, 10_000, 100_000, 1_000},
		{100_000, 1_000, 100_000, 1_000},
		{0, 10_000, 100_000, 1_000},
		{0, 10_000, 50, 1},
		{1_000_000, 10_000, 0, 1},
	} {
		o := options{scaleUsers: tt.users, scaleGroups: tt.groups, pgScaleUsers: tt.pgUsers}
		if got := pgScaleGroups(o); got != tt.want {
			t.Errorf("users %d, groups %d, pg users %d: %d groups, want %d", tt.users, tt.groups, tt.pgUsers, got, tt.want)
		}
	}
}
