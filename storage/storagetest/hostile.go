package storagetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// hostileValues are lookup keys a client or an IdP can send (a SAML
// InResponseTo, a SCIM id in a path, a filter value) that a backend may not
// be able to store as text: a NUL byte, invalid UTF-8, a huge value.
var hostileValues = []string{"u1\x00", "\x00", "\xff\xfe", "u\xc3", strings.Repeat("u", 100_000)}

// testHostileLookups: lookups by such values find nothing, without an
// error, in a View and in an Update, and leave the transaction usable:
// a read after them still works and the Update commits.
func testHostileLookups(t *testing.T, h *harness) {
	seedDirectory(h)
	h.update(tenant, func(tx storage.Tx) error {
		_, err := tx.AddMember("g1", user("u1"))
		return errors.Join(err, tx.PutRecord("saml-request", "r1", []byte("v"), 0))
	})
	lookups := func(tx storage.ReadTx, v string) error {
		notFound := func(what string, err error) error {
			if !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("%s(%q): %v, want ErrNotFound", what, v, err)
			}
			return nil
		}
		empty := func(what string, n int, err error) error {
			if err != nil || n != 0 {
				return fmt.Errorf("%s(%q): %d, %v; want nothing", what, v, n, err)
			}
			return nil
		}
		_, e1 := tx.GetUser(v)
		_, e2 := tx.UserByUserName(v)
		_, e3 := tx.GetGroup(v)
		_, e4 := tx.GetRecord("saml-request", v)
		_, e5 := tx.GetRecord(v, "r1")
		us, e6 := tx.UsersByEmail(v)
		us2, e7 := tx.UsersByExternalID(v)
		gs, e8 := tx.GroupsByDisplayName(v)
		ids, e9 := tx.GroupsOf(v)
		ss, e10 := tx.SessionsOf(v)
		in, e11 := tx.IsMember("g1", v)
		n, e12 := tx.CountMembers(v)
		in2, e13 := tx.IsMember(v, "u1")
		es, e14 := tx.Events(storage.EventQuery{Types: []string{v}})
		members := 0
		e15 := tx.Members(v, func(storage.Member) (bool, error) { members++; return true, nil })
		return errors.Join(
			notFound("GetUser", e1), notFound("UserByUserName", e2), notFound("GetGroup", e3),
			notFound("GetRecord key", e4), notFound("GetRecord kind", e5),
			empty("UsersByEmail", len(us), e6), empty("UsersByExternalID", len(us2), e7),
			empty("GroupsByDisplayName", len(gs), e8), empty("GroupsOf", len(ids), e9),
			empty("SessionsOf", len(ss), e10), empty("IsMember member", boolInt(in), e11),
			empty("CountMembers", n, e12), empty("IsMember group", boolInt(in2), e13),
			empty("Events types", len(es), e14), empty("Members", members, e15),
		)
	}
	stillWorks := func(tx storage.ReadTx) error {
		if u, err := tx.GetUser("u1"); err != nil || u.ID != "u1" {
			return fmt.Errorf("GetUser(u1) after hostile lookups: %v", err)
		}
		return nil
	}
	for _, v := range hostileValues {
		h.view(tenant, func(tx storage.ReadTx) error {
			if err := errors.Join(lookups(tx, v), stillWorks(tx)); err != nil {
				t.Error(err)
			}
			return nil
		})
		h.update(tenant, func(tx storage.Tx) error {
			if err := errors.Join(lookups(tx, v), stillWorks(tx)); err != nil {
				t.Error(err)
			}
			removed, err := tx.RemoveMember("g1", v)
			if err != nil || removed {
				t.Errorf("RemoveMember(g1, %q) = %v, %v; want false", v, removed, err)
			}
			if err := tx.DeleteRecord("saml-request", v); err != nil {
				t.Errorf("DeleteRecord(%q): %v", v, err)
			}
			return tx.PutRecord("after", "hostile", []byte("ok"), 0)
		})
	}
	h.view(tenant, func(tx storage.ReadTx) error {
		if v, err := tx.GetRecord("after", "hostile"); err != nil || string(v) != "ok" {
			t.Errorf("the Updates around hostile lookups did not commit: %q, %v", v, err)
		}
		if ok, err := tx.IsMember("g1", "u1"); err != nil || !ok {
			t.Errorf("IsMember(g1, u1) = %v, %v after hostile RemoveMembers", ok, err)
		}
		return nil
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
