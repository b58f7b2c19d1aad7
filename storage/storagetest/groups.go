package storagetest

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

func testGroupCRUD(t *testing.T, h *harness) {
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	g := &storage.Group{
		ID: "g1", DisplayName: "Engineering", ExternalID: "gx1", Source: storage.SourceSCIM,
		Attributes: json.RawMessage(`{"k":"v"}`), Created: created, Modified: created,
	}
	h.putGroup(tenant, g)
	if g.Version != 1 {
		t.Fatalf("Version after create = %d, want 1", g.Version)
	}
	got, err := h.getGroup(tenant, "g1")
	wantErr(t, "GetGroup", err, nil)
	if got.DisplayName != "Engineering" || got.ExternalID != "gx1" || got.Source != storage.SourceSCIM ||
		got.Version != 1 || !got.Created.Equal(created) || string(got.Attributes) != `{"k":"v"}` {
		t.Fatalf("GetGroup = %+v, want the stored fields", got)
	}

	fresh := &storage.Group{ID: "g2", DisplayName: "Other"}
	h.putGroup(tenant, fresh)
	if fresh.Created.IsZero() {
		t.Fatal("PutGroup left Created zero on create")
	}

	for _, want := range []int64{2, 3} {
		r := &storage.Group{ID: "g1", DisplayName: "Eng", Created: time.Now().Add(time.Hour)}
		h.putGroup(tenant, r)
		got, err := h.getGroup(tenant, "g1")
		wantErr(t, "GetGroup after replace", err, nil)
		if got.Version != want || r.Version != want || !got.Created.Equal(created) ||
			got.DisplayName != "Eng" || got.ExternalID != "" {
			t.Fatalf("after replace: %+v (caller Version %d), want Version %d, Created %v kept", got, r.Version, want, created)
		}
	}

	h.view(tenant, func(tx storage.ReadTx) error {
		if n, err := tx.CountGroups(); err != nil || n != 2 {
			t.Fatalf("CountGroups after create and replaces = %d, %v; want 2", n, err)
		}
		return nil
	})
	h.update(tenant, func(tx storage.Tx) error { return tx.DeleteGroup("g1") })
	_, err = h.getGroup(tenant, "g1")
	wantErr(t, "GetGroup after delete", err, storage.ErrNotFound)
	err = h.s.Update(t.Context(), tenant, func(tx storage.Tx) error { return tx.DeleteGroup("g1") })
	wantErr(t, "DeleteGroup of a missing group", err, storage.ErrNotFound)
}

func testGroupIndexes(t *testing.T, h *harness) {
	type lookups struct {
		byName     map[string][]string
		byExternal map[string][]string
	}
	check := func(step string, want lookups) {
		t.Helper()
		h.view(tenant, func(tx storage.ReadTx) error {
			for name, ids := range want.byName {
				gs, err := tx.GroupsByDisplayName(name)
				wantErr(t, step+": GroupsByDisplayName", err, nil)
				if got := groupIDs(gs); !slices.Equal(got, ids) {
					t.Fatalf("%s: GroupsByDisplayName(%q) = %v, want %v", step, name, got, ids)
				}
			}
			for ext, ids := range want.byExternal {
				gs, err := tx.GroupsByExternalID(ext)
				wantErr(t, step+": GroupsByExternalID", err, nil)
				if got := groupIDs(gs); !slices.Equal(got, ids) {
					t.Fatalf("%s: GroupsByExternalID(%q) = %v, want %v", step, ext, got, ids)
				}
			}
			return nil
		})
	}
	steps := []struct {
		name   string
		change func(tx storage.Tx) error
		want   lookups
	}{
		{
			name: "create (displayName is not unique)",
			change: func(tx storage.Tx) error {
				return errors.Join(
					tx.PutGroup(&storage.Group{ID: "g2", DisplayName: "Admins", ExternalID: "X"}),
					tx.PutGroup(&storage.Group{ID: "g1", DisplayName: "admins", ExternalID: "X"}),
					tx.PutGroup(&storage.Group{ID: "g3", DisplayName: "Sales"}),
				)
			},
			want: lookups{
				byName:     map[string][]string{"ADMINS": {"g1", "g2"}, "sales": {"g3"}, "admin": nil},
				byExternal: map[string][]string{"X": {"g1", "g2"}, "x": nil, "": nil},
			},
		},
		{
			name: "rename",
			change: func(tx storage.Tx) error {
				return tx.PutGroup(&storage.Group{ID: "g1", DisplayName: "Owners", ExternalID: "Y"})
			},
			want: lookups{
				byName:     map[string][]string{"admins": {"g2"}, "owners": {"g1"}},
				byExternal: map[string][]string{"X": {"g2"}, "Y": {"g1"}},
			},
		},
		{
			name:   "delete",
			change: func(tx storage.Tx) error { return tx.DeleteGroup("g2") },
			want: lookups{
				byName:     map[string][]string{"admins": nil, "Owners": {"g1"}},
				byExternal: map[string][]string{"X": nil},
			},
		},
	}
	for _, st := range steps {
		h.update(tenant, st.change)
		check(st.name, st.want)
	}
}

// memberState is the expected membership picture from both sides.
type memberState struct {
	members  map[string][]storage.Member // group -> members in id order
	groupsOf map[string][]string         // member -> group ids in order
}

func checkMembers(t *testing.T, h *harness, step string, want memberState) {
	t.Helper()
	h.view(tenant, func(tx storage.ReadTx) error {
		for gid, ms := range want.members {
			var got []storage.Member
			err := tx.Members(gid, func(m storage.Member) (bool, error) {
				got = append(got, m)
				return true, nil
			})
			wantErr(t, step+": Members", err, nil)
			if !slices.Equal(got, ms) {
				t.Fatalf("%s: Members(%q) = %v, want %v", step, gid, got, ms)
			}
			n, err := tx.CountMembers(gid)
			wantErr(t, step+": CountMembers", err, nil)
			if n != len(ms) {
				t.Fatalf("%s: CountMembers(%q) = %d, want %d", step, gid, n, len(ms))
			}
			for _, m := range ms {
				ok, err := tx.IsMember(gid, m.ID)
				wantErr(t, step+": IsMember", err, nil)
				if !ok {
					t.Fatalf("%s: IsMember(%q, %q) = false", step, gid, m.ID)
				}
			}
		}
		for mid, gids := range want.groupsOf {
			got, err := tx.GroupsOf(mid)
			wantErr(t, step+": GroupsOf", err, nil)
			if !slices.Equal(got, gids) {
				t.Fatalf("%s: GroupsOf(%q) = %v, want %v", step, mid, got, gids)
			}
			for _, gid := range gids {
				if ok, err := tx.IsMember(gid, mid); err != nil || !ok {
					t.Fatalf("%s: IsMember(%q, %q) = %v, %v; GroupsOf says yes", step, gid, mid, ok, err)
				}
			}
		}
		return nil
	})
}

func user(id string) storage.Member  { return storage.Member{ID: id, Type: storage.MemberUser} }
func group(id string) storage.Member { return storage.Member{ID: id, Type: storage.MemberGroup} }

// seedDirectory creates users u1..u3 and groups g1..g3.
func seedDirectory(h *harness) {
	h.update(tenant, func(tx storage.Tx) error {
		for _, id := range []string{"u1", "u2", "u3"} {
			if err := tx.PutUser(&storage.User{ID: id, UserName: id}); err != nil {
				return err
			}
		}
		for _, id := range []string{"g1", "g2", "g3"} {
			if err := tx.PutGroup(&storage.Group{ID: id, DisplayName: id}); err != nil {
				return err
			}
		}
		return nil
	})
}

func testMemberships(t *testing.T, h *harness) {
	seedDirectory(h)
	add := func(gid string, m storage.Member) (bool, error) {
		var added bool
		err := h.s.Update(t.Context(), tenant, func(tx storage.Tx) error {
			var err error
			added, err = tx.AddMember(gid, m)
			return err
		})
		return added, err
	}
	remove := func(gid, mid string) bool {
		var removed bool
		h.update(tenant, func(tx storage.Tx) error {
			var err error
			removed, err = tx.RemoveMember(gid, mid)
			return err
		})
		return removed
	}

	adds := []struct {
		group string
		m     storage.Member
		added bool
		err   error
	}{
		{"g1", user("u2"), true, nil},
		{"g1", user("u1"), true, nil},
		{"g1", group("g2"), true, nil},
		{"g2", user("u1"), true, nil},
		{"g1", user("u1"), false, nil}, // idempotent
		{"g2", user("u1"), false, nil},
		{"missing", user("u1"), false, storage.ErrNotFound},
	}
	for _, a := range adds {
		added, err := add(a.group, a.m)
		wantErr(t, "AddMember("+a.group+", "+a.m.ID+")", err, a.err)
		if added != a.added {
			t.Fatalf("AddMember(%q, %q) added = %v, want %v", a.group, a.m.ID, added, a.added)
		}
	}
	checkMembers(t, h, "after adds", memberState{
		members: map[string][]storage.Member{
			"g1": {group("g2"), user("u1"), user("u2")},
			"g2": {user("u1")},
			"g3": nil,
		},
		groupsOf: map[string][]string{"u1": {"g1", "g2"}, "u2": {"g1"}, "g2": {"g1"}, "u3": nil, "g1": nil},
	})
	h.view(tenant, func(tx storage.ReadTx) error {
		for _, c := range []struct{ g, m string }{{"g3", "u1"}, {"g2", "u2"}, {"missing", "u1"}, {"g1", "nobody"}} {
			if ok, err := tx.IsMember(c.g, c.m); err != nil || ok {
				t.Fatalf("IsMember(%q, %q) = %v, %v; want false", c.g, c.m, ok, err)
			}
		}
		// Members stops when fn says so.
		n := 0
		err := tx.Members("g1", func(storage.Member) (bool, error) { n++; return false, nil })
		if err != nil || n != 1 {
			t.Fatalf("Members early stop: %d calls, err %v; want 1 call", n, err)
		}
		return nil
	})

	if !remove("g1", "u1") {
		t.Fatal("RemoveMember(g1, u1) = false, want true")
	}
	if remove("g1", "u1") {
		t.Fatal("second RemoveMember(g1, u1) = true, want false")
	}
	if remove("g3", "u3") {
		t.Fatal("RemoveMember of a non-member = true, want false")
	}
	checkMembers(t, h, "after remove", memberState{
		members:  map[string][]storage.Member{"g1": {group("g2"), user("u2")}, "g2": {user("u1")}},
		groupsOf: map[string][]string{"u1": {"g2"}, "u2": {"g1"}},
	})

	// Membership changes do not touch the group record.
	g, err := h.getGroup(tenant, "g1")
	wantErr(t, "GetGroup", err, nil)
	if g.Version != 1 {
		t.Fatalf("group Version after membership changes = %d, want 1", g.Version)
	}
}

func testDeleteUserCascade(t *testing.T, h *harness) {
	seedDirectory(h)
	s1, s2, s3 := sessionOf("u1", 1), sessionOf("u1", 2), sessionOf("u2", 3)
	h.update(tenant, func(tx storage.Tx) error {
		for _, a := range []struct {
			g string
			m storage.Member
		}{{"g1", user("u1")}, {"g2", user("u1")}, {"g1", user("u2")}} {
			if _, err := tx.AddMember(a.g, a.m); err != nil {
				return err
			}
		}
		return errors.Join(tx.PutSession(s1), tx.PutSession(s2), tx.PutSession(s3))
	})
	h.update(tenant, func(tx storage.Tx) error { return tx.DeleteUser("u1") })
	checkMembers(t, h, "after DeleteUser", memberState{
		members:  map[string][]storage.Member{"g1": {user("u2")}, "g2": nil},
		groupsOf: map[string][]string{"u1": nil, "u2": {"g1"}},
	})
	h.view(tenant, func(tx storage.ReadTx) error {
		for _, s := range []*storage.Session{s1, s2} {
			_, err := tx.GetSession(s.IDHash)
			wantErr(t, "GetSession of a deleted user's session", err, storage.ErrNotFound)
		}
		ss, err := tx.SessionsOf("u1")
		if err != nil || len(ss) != 0 {
			t.Fatalf("SessionsOf(deleted user) = %d sessions, %v; want none", len(ss), err)
		}
		_, err = tx.GetSession(s3.IDHash)
		wantErr(t, "GetSession of another user's session", err, nil)
		return nil
	})
}

func testDeleteGroupCascade(t *testing.T, h *harness) {
	seedDirectory(h)
	// g2 has members (u1, u2) and is itself a member of g1 and g3.
	h.update(tenant, func(tx storage.Tx) error {
		for _, a := range []struct {
			g string
			m storage.Member
		}{
			{"g1", user("u1")}, {"g1", group("g2")},
			{"g2", user("u2")}, {"g2", user("u1")},
			{"g3", group("g2")}, {"g3", user("u3")},
		} {
			if _, err := tx.AddMember(a.g, a.m); err != nil {
				return err
			}
		}
		return nil
	})
	h.update(tenant, func(tx storage.Tx) error { return tx.DeleteGroup("g2") })
	checkMembers(t, h, "after DeleteGroup", memberState{
		members: map[string][]storage.Member{
			"g1": {user("u1")}, "g2": nil, "g3": {user("u3")},
		},
		groupsOf: map[string][]string{"u1": {"g1"}, "u2": nil, "g2": nil, "u3": {"g3"}},
	})
	// Re-creating the id starts with no members.
	h.putGroup(tenant, &storage.Group{ID: "g2", DisplayName: "again"})
	checkMembers(t, h, "after re-create", memberState{
		members:  map[string][]storage.Member{"g2": nil},
		groupsOf: map[string][]string{"g2": nil},
	})
	// Users survive the deletion of their group.
	if _, err := h.getUser(tenant, "u2"); err != nil {
		t.Fatalf("GetUser(u2) after DeleteGroup: %v", err)
	}
}

func testScanGroups(t *testing.T, h *harness) {
	ids := []string{"g3", "g1", "g4", "g0", "g2"}
	h.update(tenant, func(tx storage.Tx) error {
		for _, id := range ids {
			if err := tx.PutGroup(&storage.Group{ID: id, DisplayName: "n" + id}); err != nil {
				return err
			}
		}
		return nil
	})
	cases := []struct {
		after     string
		stopAfter int
		want      []string
	}{
		{"", 0, []string{"g0", "g1", "g2", "g3", "g4"}},
		{"g1", 0, []string{"g2", "g3", "g4"}},
		{"g15", 0, []string{"g2", "g3", "g4"}},
		{"g4", 0, nil},
		{"", 2, []string{"g0", "g1"}},
	}
	for _, c := range cases {
		var got []string
		h.view(tenant, func(tx storage.ReadTx) error {
			return tx.ScanGroups(c.after, func(g *storage.Group) (bool, error) {
				got = append(got, g.ID)
				return c.stopAfter == 0 || len(got) < c.stopAfter, nil
			})
		})
		if !slices.Equal(got, c.want) {
			t.Errorf("ScanGroups(%q, stop %d) = %v, want %v", c.after, c.stopAfter, got, c.want)
		}
	}
	boom := errors.New("boom")
	err := h.s.View(t.Context(), tenant, func(tx storage.ReadTx) error {
		return tx.ScanGroups("", func(*storage.Group) (bool, error) { return false, boom })
	})
	wantErr(t, "ScanGroups with fn error", err, boom)
	h.update(tenant, func(tx storage.Tx) error { return tx.DeleteGroup("g0") })
	h.view(tenant, func(tx storage.ReadTx) error {
		n, err := tx.CountGroups()
		if err != nil || n != 4 {
			t.Fatalf("CountGroups = %d, %v; want 4", n, err)
		}
		return nil
	})
}
