package operator_test

import (
	"context"
	"errors"
	"testing"

	"github.com/portcullis/portcullis/operator"
	"github.com/portcullis/portcullis/storage"
)

// TestStoredMappings: a stored mapping takes effect on the next request of
// every member (through the gate, on a warm cache); the highest of several
// groups wins; the config wins for a group it maps (refused with
// ErrPinnedByConfig, by id, name or externalId); deleting falls back;
// each change is audited with before and after.
func TestStoredMappings(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	eng := e.group("engineering", storage.SourceSCIM)
	ops := e.group("ops", storage.SourceSCIM)
	admins := e.group("admins", storage.SourceSCIM)
	ann := e.signIn(e.user("ann", storage.SourceSCIM, eng))
	ben := e.signIn(e.user("ben", storage.SourceSCIM, eng, ops))
	cid := e.user("cid", storage.SourceSCIM, admins)
	cat := e.signIn(cid)
	e.wantRole("before", ann, "viewer")
	e.wantRole("before", cat, "admin")

	steps := []struct {
		name       string
		do         func() error
		wantErr    error
		roles      map[string]string // session -> role on the next request
		wantBefore string
		wantAfter  string
	}{
		{"map engineering by name", func() error { return e.svc.SetMapping(ctx, "admin", "Engineering", "editor") }, nil,
			map[string]string{ann: "editor", ben: "editor"}, "", eng + "=editor"},
		{"map ops higher by id", func() error { return e.svc.SetMapping(ctx, "admin", ops, "admin") }, nil,
			map[string]string{ann: "editor", ben: "admin"}, "", ops + "=admin"},
		{"change engineering by id", func() error { return e.svc.SetMapping(ctx, "admin", eng, "viewer") }, nil,
			map[string]string{ann: "viewer", ben: "admin"}, eng + "=editor", eng + "=viewer"},
		{"unchanged is no write", func() error { return e.svc.SetMapping(ctx, "admin", "engineering", "VIEWER") }, nil,
			map[string]string{ann: "viewer"}, "", ""},
		{"config wins by name", func() error { return e.svc.SetMapping(ctx, "admin", "ADMINS", "viewer") }, operator.ErrPinnedByConfig,
			map[string]string{cat: "admin"}, "", ""},
		{"config wins by id", func() error { return e.svc.SetMapping(ctx, "admin", admins, "viewer") }, operator.ErrPinnedByConfig,
			map[string]string{cat: "admin"}, "", ""},
		{"config delete refused", func() error { return e.svc.DeleteMapping(ctx, "admin", "admins") }, operator.ErrPinnedByConfig,
			map[string]string{cat: "admin"}, "", ""},
		{"unknown role", func() error { return e.svc.SetMapping(ctx, "admin", "ops", "root") }, operator.ErrInvalid,
			map[string]string{ben: "admin"}, "", ""},
		{"empty group", func() error { return e.svc.SetMapping(ctx, "admin", " ", "viewer") }, operator.ErrInvalid, nil, "", ""},
		{"delete ops", func() error { return e.svc.DeleteMapping(ctx, "admin", "ops") }, nil,
			map[string]string{ben: "viewer"}, ops + "=admin", ""},
		{"delete again", func() error { return e.svc.DeleteMapping(ctx, "admin", "ops") }, operator.ErrNotFound, nil, "", ""},
		{"map a group before it exists", func() error { return e.svc.SetMapping(ctx, "admin", "contractors", "editor") }, nil,
			nil, "", "contractors=editor"},
	}
	for _, st := range steps {
		before := len(e.events(storage.EventMappingChanged))
		err := st.do()
		if !errors.Is(err, st.wantErr) {
			t.Fatalf("%s: %v, want %v", st.name, err, st.wantErr)
		}
		evs := e.events(storage.EventMappingChanged)
		wantEvent := st.wantErr == nil && (st.wantBefore != "" || st.wantAfter != "")
		switch {
		case wantEvent && (len(evs) != before+1 || evs[0].Before != st.wantBefore || evs[0].After != st.wantAfter || evs[0].Actor != "admin"):
			t.Fatalf("%s: newest mapping.changed %+v, want %q -> %q", st.name, evs, st.wantBefore, st.wantAfter)
		case !wantEvent && len(evs) != before:
			t.Fatalf("%s: wrote %+v", st.name, evs[0])
		}
		for sid, role := range st.roles {
			e.wantRole(st.name, sid, role)
		}
	}

	// A group created later under the mapped name is mapped at once.
	dan := e.signIn(e.user("dan", storage.SourceSCIM))
	e.wantRole("not yet in contractors", dan, "viewer")
	contractors := e.group("contractors", storage.SourceJIT)
	e.update(func(tx storage.Tx) error {
		_, err := tx.AddMember(contractors, storage.Member{ID: e.stored(e.userID("dan")).ID, Type: storage.MemberUser})
		return err
	})
	e.wantRole("in contractors", dan, "editor")

	m, err := e.svc.Mappings(ctx)
	if err != nil || len(m.Config) != 1 || m.Config[0].Group != "admins" || len(m.Stored) != 2 || m.Default != "viewer" || len(m.Roles) != 3 {
		t.Fatalf("Mappings = %+v, %v", m, err)
	}
	groups, err := e.svc.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][3]string{
		"engineering": {"viewer", "stored", "2"}, "ops": {"viewer", "default", "1"},
		"admins": {"admin", "config", "1"}, "contractors": {"editor", "stored", "1"},
	}
	for _, g := range groups {
		w := want[g.DisplayName]
		if g.Level != w[0] || g.LevelFrom != w[1] || itoa(g.Members) != w[2] {
			t.Errorf("group %s = level %s from %s, %d members; want %v", g.DisplayName, g.Level, g.LevelFrom, g.Members, w)
		}
	}
}

func itoa(n int) string { return string(rune('0' + n)) }

func (e *env) userID(userName string) string {
	e.t.Helper()
	var id string
	err := e.store.View(context.Background(), tenant, func(tx storage.ReadTx) error {
		u, err := tx.UserByUserName(userName)
		if err == nil {
			id = u.ID
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// TestDeclareGroup: a claim group declared ahead of its first sign-in can
// be mapped; declaring it twice is a conflict.
func TestDeclareGroup(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	g, err := e.svc.DeclareGroup(ctx, "admin", "  Finance  ")
	if err != nil || g.DisplayName != "Finance" || g.Source != storage.SourceManual || g.LevelFrom != "default" {
		t.Fatalf("DeclareGroup = %+v, %v", g, err)
	}
	if _, err := e.svc.DeclareGroup(ctx, "admin", "finance"); !errors.Is(err, operator.ErrConflict) {
		t.Fatalf("second declare: %v", err)
	}
	if _, err := e.svc.DeclareGroup(ctx, "admin", ""); !errors.Is(err, operator.ErrInvalid) {
		t.Fatalf("empty declare: %v", err)
	}
	if err := e.svc.SetMapping(ctx, "admin", "finance", "editor"); err != nil {
		t.Fatal(err)
	}
	sid := e.signIn(e.user("fay", storage.SourceJIT, g.ID))
	e.wantRole("member of the declared group", sid, "editor")
	if evs := e.events(storage.EventGroupDeclared); len(evs) != 1 {
		t.Fatalf("group.declared events: %+v", evs)
	}
}
