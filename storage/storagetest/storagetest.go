// Package storagetest owns the conformance suite of storage.Store: the
// behaviour the rest of Portcullis relies on, pinned down once so that every
// backend (the embedded Badger one today, a shared one later) passes the same
// checks against a real database.
//
// A backend's test calls Run with a function that opens its store on a
// directory:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T, dir string) storage.Store {
//			s, err := mybackend.Open(dir)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// Run gives every subtest a fresh t.TempDir() and may call open again on the
// same directory after Close, to check that committed data survives.
package storagetest

import (
	"context"
	"errors"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// Opener opens (or reopens) a store on dir.
type Opener func(t *testing.T, dir string) storage.Store

// Run runs the whole conformance suite against the backend open opens.
func Run(t *testing.T, open func(t *testing.T, dir string) storage.Store) {
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, open)
			tc.run(t, h)
		})
	}
}

// suite is the table of conformance checks; each gets its own store.
var suite = []struct {
	name string
	run  func(t *testing.T, h *harness)
}{
	{"UserCreateReplaceDelete", testUserCRUD},
	{"UserNameUniqueness", testUserNameUniqueness},
	{"UserIndexes", testUserIndexes},
	{"UserLongIndexValues", testUserLongIndexValues},
	{"HostileLookups", testHostileLookups},
	{"GroupCreateReplaceDelete", testGroupCRUD},
	{"GroupIndexes", testGroupIndexes},
	{"Memberships", testMemberships},
	{"DeleteUserRemovesMembershipsAndSessions", testDeleteUserCascade},
	{"DeleteGroupRemovesMemberships", testDeleteGroupCascade},
	{"DeleteLargeGroup", testDeleteLargeGroup},
	{"MemberCounts", testMemberCounts},
	{"CountsReadOwnWrites", testCountsReadOwnWrites},
	{"ScanAndCountUsers", testScanUsers},
	{"ScanAndCountGroups", testScanGroups},
	{"IDAtPosition", testIDAt},
	{"GroupsOfEach", testGroupsOfEach},
	{"UserPage", testUserPage},
	{"SCIMToken", testSCIMToken},
	{"Sessions", testSessions},
	{"Records", testRecords},
	{"Events", testEvents},
	{"EventsLimit", testEventsLimit},
	{"EventsReadOwnAppends", testEventsReadOwnAppends},
	{"EventID", testEventID},
	{"EventRetentionAge", testEventRetentionAge},
	{"EventRetentionCap", testEventRetentionCap},
	{"TenantIsolation", testTenantIsolation},
	{"AbortedUpdateWritesNothing", testAbort},
	{"TransactionTooBig", testTooBig},
	{"CancelledContext", testCancelledContext},
	{"Generation", testGeneration},
	{"Mappings", testMappings},
	{"ConcurrentMembershipUpdates", testConcurrentMembers},
	{"ConcurrentUserNameRace", testConcurrentUserName},
	{"ConcurrentCounts", testConcurrentCounts},
	{"DeleteRacesWithAdd", testDeleteRacesWithAdd},
	{"ConcurrentCreateOnce", testConcurrentCreateOnce},
	{"Lease", testLease},
	{"DurableAcrossReopen", testDurability},
}

// harness holds the store under test and can reopen it on the same dir.
type harness struct {
	t    *testing.T
	open Opener
	dir  string
	s    storage.Store
}

func newHarness(t *testing.T, open Opener) *harness {
	h := &harness{t: t, open: open, dir: t.TempDir()}
	h.s = open(t, h.dir)
	t.Cleanup(func() {
		if h.s != nil {
			if err := h.s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	})
	return h
}

// reopen closes the store (twice: Close is idempotent) and opens it again.
func (h *harness) reopen() {
	h.t.Helper()
	if err := h.s.Close(); err != nil {
		h.t.Fatalf("Close: %v", err)
	}
	if err := h.s.Close(); err != nil {
		h.t.Fatalf("second Close: %v", err)
	}
	h.s = nil
	h.s = h.open(h.t, h.dir)
}

// update runs fn in an Update that must succeed.
func (h *harness) update(tenant string, fn func(tx storage.Tx) error) {
	h.t.Helper()
	if err := h.s.Update(context.Background(), tenant, fn); err != nil {
		h.t.Fatalf("Update(%q): %v", tenant, err)
	}
}

// view runs fn in a View that must succeed.
func (h *harness) view(tenant string, fn func(tx storage.ReadTx) error) {
	h.t.Helper()
	if err := h.s.View(context.Background(), tenant, fn); err != nil {
		h.t.Fatalf("View(%q): %v", tenant, err)
	}
}

func (h *harness) putUser(tenant string, u *storage.User) {
	h.t.Helper()
	h.update(tenant, func(tx storage.Tx) error { return tx.PutUser(u) })
}

func (h *harness) putGroup(tenant string, g *storage.Group) {
	h.t.Helper()
	h.update(tenant, func(tx storage.Tx) error { return tx.PutGroup(g) })
}

func (h *harness) getUser(tenant, id string) (*storage.User, error) {
	var u *storage.User
	err := h.s.View(context.Background(), tenant, func(tx storage.ReadTx) error {
		var err error
		u, err = tx.GetUser(id)
		return err
	})
	return u, err
}

func (h *harness) getGroup(tenant, id string) (*storage.Group, error) {
	var g *storage.Group
	err := h.s.View(context.Background(), tenant, func(tx storage.ReadTx) error {
		var err error
		g, err = tx.GetGroup(id)
		return err
	})
	return g, err
}

// userIDs lists the ids of users, in order.
func userIDs(us []*storage.User) []string {
	ids := make([]string, 0, len(us))
	for _, u := range us {
		ids = append(ids, u.ID)
	}
	return ids
}

func groupIDs(gs []*storage.Group) []string {
	ids := make([]string, 0, len(gs))
	for _, g := range gs {
		ids = append(ids, g.ID)
	}
	return ids
}

// wantErr fails unless errors.Is(err, want) (want nil: err must be nil).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}
