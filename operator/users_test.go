package operator_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/operator"
	"github.com/portcullis/portcullis/storage"
)

// TestIdPManagedUsersAreLocked: every manual change to a user an IdP
// manages is refused with a *ManagedError naming the IdP and what to do,
// and changes nothing.
func TestIdPManagedUsersAreLocked(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	role, off := "admin", false
	for _, tc := range []struct {
		source, wantText string
	}{
		{storage.SourceSCIM, "over SCIM"},
		{storage.SourceGoogle, "Google Admin console"},
		{storage.SourceJIT, "at sign-in"},
	} {
		id := e.user("u-"+tc.source, tc.source)
		for what, call := range map[string]func() error{
			"set role": func() error {
				_, err := e.svc.UpdateUser(ctx, "admin", id, operator.UserChange{Role: &role})
				return err
			},
			"deactivate": func() error {
				_, err := e.svc.UpdateUser(ctx, "admin", id, operator.UserChange{Active: &off})
				return err
			},
			"delete": func() error { return e.svc.DeleteUser(ctx, "admin", id) },
		} {
			err := call()
			var me *operator.ManagedError
			if !errors.As(err, &me) || me.Source != tc.source || me.UserID != id ||
				!strings.Contains(me.Message, tc.wantText) || !strings.Contains(me.Message, "disconnect") {
				t.Errorf("%s %s user: %v, want a ManagedError naming the IdP", what, tc.source, err)
			}
		}
		if u := e.stored(id); !u.Active || u.Role != "" || u.Version != 1 {
			t.Errorf("%s user changed by refused calls: %+v", tc.source, u)
		}
	}
}

// TestManualUsers: create, change role, deactivate (sessions end, next
// request refused), reactivate and delete a manual user, each audited;
// bad input is ErrInvalid, a taken userName ErrConflict.
func TestManualUsers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.group("admins", storage.SourceSCIM)

	for _, bad := range []operator.NewUser{
		{UserName: "", Role: "viewer"},
		{UserName: "x", Role: "superuser"},
		{UserName: "x", Email: "not-an-email", Role: "viewer"},
		{UserName: "line\nbreak", Role: "viewer"},
	} {
		if _, err := e.svc.CreateManualUser(ctx, "admin", bad); !errors.Is(err, operator.ErrInvalid) {
			t.Errorf("CreateManualUser(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	d, err := e.svc.CreateManualUser(ctx, "console:root", operator.NewUser{UserName: "dana", Email: "Dana@Acme.test", Role: "Editor"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Source != storage.SourceManual || d.Role != "editor" || d.RoleReason.From != "manual" || !d.Active ||
		len(d.Emails) != 1 || d.Emails[0] != "dana@acme.test" {
		t.Fatalf("created = %+v", d)
	}
	if _, err := e.svc.CreateManualUser(ctx, "admin", operator.NewUser{UserName: "DANA", Role: "viewer"}); !errors.Is(err, operator.ErrConflict) {
		t.Fatalf("duplicate userName: %v, want ErrConflict", err)
	}
	if evs := e.events(storage.EventUserManualCreated); len(evs) != 1 || evs[0].Actor != "console:root" {
		t.Fatalf("user.manual_created events = %+v", evs)
	}

	// The pinned role wins over groups: in the config-mapped admins group
	// she still has editor.
	sid := e.signIn(d.ID)
	e.wantRole("created", sid, "editor")
	adminsID := ""
	groups, _ := e.svc.ListGroups(ctx)
	for _, g := range groups {
		if g.DisplayName == "admins" {
			adminsID = g.ID
		}
	}
	e.update(func(tx storage.Tx) error {
		_, err := tx.AddMember(adminsID, storage.Member{ID: d.ID, Type: storage.MemberUser})
		return err
	})
	e.wantRole("in a mapped group", sid, "editor")

	steps := []struct {
		name      string
		change    operator.UserChange
		wantEvent string
		check     func()
	}{
		{"set role", operator.UserChange{Role: ptr("viewer")}, storage.EventUserRoleChanged, func() { e.wantRole("role set", sid, "viewer") }},
		{"same role", operator.UserChange{Role: ptr("viewer")}, "", func() { e.wantRole("same role", sid, "viewer") }},
		{"deactivate", operator.UserChange{Active: ptr(false)}, storage.EventUserDeactivated, func() { e.wantSignedOut("deactivated", sid) }},
		{"reactivate", operator.UserChange{Active: ptr(true)}, storage.EventUserReactivated, func() {
			sid = e.signIn(d.ID)
			e.wantRole("reactivated", sid, "viewer")
		}},
	}
	for _, st := range steps {
		before := len(e.events())
		got, err := e.svc.UpdateUser(ctx, "admin", d.ID, st.change)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if st.change.Active != nil && got.Active != *st.change.Active {
			t.Fatalf("%s: active = %v", st.name, got.Active)
		}
		evs := e.events()
		if st.wantEvent == "" && len(evs) != before {
			t.Fatalf("%s: wrote events %+v", st.name, evs[0])
		}
		if st.wantEvent != "" && (len(evs) != before+1 || evs[0].Type != st.wantEvent || evs[0].Actor != "admin") {
			t.Fatalf("%s: newest event %+v, want %s", st.name, evs[0], st.wantEvent)
		}
		st.check()
	}
	if _, err := e.svc.UpdateUser(ctx, "admin", d.ID, operator.UserChange{Role: ptr("root")}); !errors.Is(err, operator.ErrInvalid) {
		t.Fatalf("unknown role: %v", err)
	}
	if err := e.svc.DeleteUser(ctx, "admin", d.ID); err != nil {
		t.Fatal(err)
	}
	e.wantSignedOut("deleted", sid)
	if _, err := e.svc.User(ctx, d.ID); !errors.Is(err, operator.ErrNotFound) {
		t.Fatalf("User after delete: %v", err)
	}
	if err := e.svc.DeleteUser(ctx, "admin", d.ID); !errors.Is(err, operator.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestListUsers: pages in id order through the cursor, filters by name,
// displayName, email prefix and source, with groups, role and sessions.
func TestListUsers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admins := e.group("admins", storage.SourceSCIM)
	var all []string
	for i := 0; i < 25; i++ {
		name := []string{"alice", "bob", "carol", "dave", "erin"}[i%5] + string(rune('a'+i))
		all = append(all, e.user(name, storage.SourceSCIM))
	}
	boss := e.user("the-boss", storage.SourceJIT, admins)
	e.signIn(boss)

	seen := 0
	cursor := ""
	for pages := 0; ; pages++ {
		users, next, err := e.svc.ListUsers(ctx, operator.UserQuery{Cursor: cursor, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(users); i++ {
			if users[i-1].ID >= users[i].ID {
				t.Fatalf("page %d not in id order", pages)
			}
		}
		if cursor != "" && len(users) > 0 && users[0].ID <= cursor {
			t.Fatalf("page %d repeats the previous page", pages)
		}
		seen += len(users)
		if next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		cursor = next
	}
	if seen != 26 {
		t.Fatalf("paged through %d users, want 26", seen)
	}
	for _, tc := range []struct {
		q    operator.UserQuery
		want int
	}{
		{operator.UserQuery{Filter: "ALICE"}, 5},
		{operator.UserQuery{Filter: "boss"}, 1},
		{operator.UserQuery{Filter: "bob"}, 5},
		{operator.UserQuery{Filter: "carol"}, 5},
		{operator.UserQuery{Filter: "acme.test"}, 0}, // email matches by prefix only
		{operator.UserQuery{Filter: "the-boss@"}, 1},
		{operator.UserQuery{Source: storage.SourceJIT}, 1},
		{operator.UserQuery{Source: storage.SourceManual}, 0},
		{operator.UserQuery{Filter: "nobody"}, 0},
	} {
		users, next, err := e.svc.ListUsers(ctx, tc.q)
		if err != nil || len(users) != tc.want || next != "" {
			t.Errorf("ListUsers(%+v) = %d users, next %q, %v; want %d", tc.q, len(users), next, err, tc.want)
		}
	}
	users, _, _ := e.svc.ListUsers(ctx, operator.UserQuery{Filter: "the-boss"})
	if u := users[0]; u.Role != "admin" || len(u.Groups) != 1 || u.Groups[0].DisplayName != "admins" || u.Sessions != 1 || u.LastSignIn == nil {
		t.Fatalf("boss = %+v", u)
	}
	d, err := e.svc.User(ctx, boss)
	if err != nil || d.RoleReason.From != "group" || d.RoleReason.MappingFrom != "config" || d.RoleReason.Group.ID != admins ||
		!strings.Contains(d.RoleReason.Text, "admins") {
		t.Fatalf("boss detail = %+v, %v", d, err)
	}
	d, _ = e.svc.User(ctx, all[0])
	if d.Role != "viewer" || d.RoleReason.From != "default" {
		t.Fatalf("unmapped user = %+v", d)
	}
	if _, _, err := e.svc.ListUsers(ctx, operator.UserQuery{Filter: strings.Repeat("x", 1000)}); !errors.Is(err, operator.ErrInvalid) {
		t.Fatalf("long filter: %v", err)
	}
}
