package storagetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// testMappings: stored group mappings are keyed by the exact group
// reference, listed in group order, replaced by a second PutMapping, and
// survive a reopen; DeleteMapping says whether one was there.
func testMappings(t *testing.T, h *harness) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	h.view(tenant, func(tx storage.ReadTx) error {
		ms, err := tx.StoredMappings()
		if err != nil || len(ms) != 0 {
			t.Fatalf("StoredMappings of an empty tenant = %+v, %v", ms, err)
		}
		return nil
	})
	h.update(tenant, func(tx storage.Tx) error {
		return errors.Join(
			tx.PutMapping(storage.Mapping{Group: "Engineering", Role: "editor", Modified: at}),
			tx.PutMapping(storage.Mapping{Group: "engineering", Role: "viewer", Modified: at}),
			tx.PutMapping(storage.Mapping{Group: "9f1c-id", Role: "admin", Modified: at}),
			tx.PutMapping(storage.Mapping{Group: "Engineering", Role: "admin", Modified: at}), // replaces
		)
	})
	check := func(step string, want []storage.Mapping) {
		t.Helper()
		h.view(tenant, func(tx storage.ReadTx) error {
			got, err := tx.StoredMappings()
			if err != nil {
				t.Fatalf("%s: StoredMappings: %v", step, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s: StoredMappings = %+v, want %+v", step, got, want)
			}
			for i := range want {
				if got[i].Group != want[i].Group || got[i].Role != want[i].Role || !got[i].Modified.Equal(want[i].Modified) {
					t.Fatalf("%s: StoredMappings[%d] = %+v, want %+v", step, i, got[i], want[i])
				}
			}
			return nil
		})
	}
	check("after puts", []storage.Mapping{
		{Group: "9f1c-id", Role: "admin", Modified: at},
		{Group: "Engineering", Role: "admin", Modified: at},
		{Group: "engineering", Role: "viewer", Modified: at},
	})
	h.reopen()
	check("after reopen", []storage.Mapping{
		{Group: "9f1c-id", Role: "admin", Modified: at},
		{Group: "Engineering", Role: "admin", Modified: at},
		{Group: "engineering", Role: "viewer", Modified: at},
	})
	for _, c := range []struct {
		group string
		want  bool
	}{{"engineering", true}, {"engineering", false}, {"missing", false}, {"", false}, {strings.Repeat("x", 4096), false}} {
		h.update(tenant, func(tx storage.Tx) error {
			got, err := tx.DeleteMapping(c.group)
			if err != nil || got != c.want {
				t.Fatalf("DeleteMapping(%.20q) = %v, %v; want %v", c.group, got, err, c.want)
			}
			return nil
		})
	}
	check("after deletes", []storage.Mapping{
		{Group: "9f1c-id", Role: "admin", Modified: at},
		{Group: "Engineering", Role: "admin", Modified: at},
	})
	// An empty or oversized group reference is refused, not stored.
	for _, g := range []string{"", strings.Repeat("x", storage.MaxMappingGroupLen+1)} {
		if err := h.s.Update(t.Context(), tenant, func(tx storage.Tx) error {
			return tx.PutMapping(storage.Mapping{Group: g, Role: "admin"})
		}); err == nil {
			t.Fatalf("PutMapping with a %d-byte group succeeded", len(g))
		}
	}
}
