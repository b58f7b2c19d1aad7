package directory_test

import (
	"context"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/directory"
	"github.com/portcullis/portcullis/internal/googlefake"
	"github.com/portcullis/portcullis/storage"
)

func (e *env) poll() directory.Status {
	e.t.Helper()
	if err := e.syncer.PollActivity(context.Background()); err != nil {
		e.t.Fatalf("activity poll: %v", err)
	}
	return e.syncer.Status()
}

func TestActivityPoll(t *testing.T) {
	mapped := func(c *directory.Config) {
		c.Users, c.MappedGroups = directory.UsersMappedGroups, []string{"Engineering"}
	}
	for _, tc := range []struct {
		name   string
		config func(*directory.Config)
		act    func(f *googlefake.Server, d domain)
		check  func(e *env, d domain)
	}{
		{"suspension ends sessions", nil,
			func(f *googlefake.Server, d domain) { f.SuspendUser(d.alice) },
			func(e *env, d domain) { e.wantDeactivated(d.alice, "suspended in Google") }},
		{"archiving", nil,
			func(f *googlefake.Server, d domain) {
				f.UpdateUser(d.alice, func(u *googlefake.User) { u.Archived = true })
				f.AddActivity("USER_SETTINGS", "ARCHIVE_USER", map[string]string{"USER_EMAIL": "alice@example.com"})
			},
			func(e *env, d domain) { e.wantDeactivated(d.alice, "archived in Google") }},
		{"deletion, named by an alias", nil,
			func(f *googlefake.Server, d domain) {
				f.DeleteUser(d.alice)
				f.AddActivity("USER_SETTINGS", "DELETE_USER", map[string]string{"USER_EMAIL": "a@example.com"})
			},
			func(e *env, d domain) { e.wantDeactivated(d.alice, "deleted in Google") }},
		{"removal from the last mapped group", mapped,
			func(f *googlefake.Server, d domain) {
				f.RemoveMember(d.eng, d.bob)
				f.AddActivity("GROUP_SETTINGS", "REMOVE_GROUP_MEMBER", map[string]string{"USER_EMAIL": "bob@example.com", "GROUP_EMAIL": "eng@example.com"})
			},
			func(e *env, d domain) {
				e.wantDeactivated(d.bob, "in no mapped group")
				if e.memberNames(e.groupByGoogleID(d.eng).ID)["bob@example.com"] {
					t.Error("bob still in Engineering")
				}
			}},
		{"removal from a nested group", mapped,
			func(f *googlefake.Server, d domain) {
				f.RemoveMember(d.platform, d.carol)
				f.AddActivity("GROUP_SETTINGS", "REMOVE_GROUP_MEMBER", map[string]string{"USER_EMAIL": "carol@example.com", "GROUP_EMAIL": "platform@example.com"})
			},
			func(e *env, d domain) { e.wantDeactivated(d.carol, "in no mapped group") }},
		{"group deletion", nil,
			func(f *googlefake.Server, d domain) {
				f.DeleteGroup(d.sales)
				f.AddActivity("GROUP_SETTINGS", "DELETE_GROUP", map[string]string{"GROUP_EMAIL": "sales@example.com"})
			},
			func(e *env, d domain) {
				if e.groupByGoogleID(d.sales) != nil {
					t.Error("Sales still stored")
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			d := seed(f)
			e := newEnv(t, f, tc.config)
			e.sync()
			for _, id := range []string{d.alice, d.bob, d.carol} {
				e.addSession(e.userByGoogleID(id).ID)
			}
			tc.act(f, d)
			st := e.poll()
			if st.ActivityApplied != 1 || st.ActivityError != "" {
				t.Errorf("status %+v", st)
			}
			tc.check(e, d)
			// The next poll reads the same events again (overlap), writes
			// nothing.
			gen := e.store.Generation(tenant)
			e.poll()
			if e.store.Generation(tenant) != gen {
				t.Error("a second poll over the same events wrote")
			}
		})
	}
}

func (e *env) wantDeactivated(googleID, reason string) {
	e.t.Helper()
	u := e.userByGoogleID(googleID)
	if u.Active {
		e.t.Fatalf("%s still active", u.UserName)
	}
	if n := e.sessions(u.ID); n != 0 {
		e.t.Errorf("%s has %d sessions left", u.UserName, n)
	}
	evs := e.events(storage.EventUserDeactivated)
	if len(evs) != 1 || evs[0].ResourceID != u.ID || evs[0].Actor != "google" || !strings.Contains(evs[0].Reason, reason) {
		e.t.Errorf("deactivation events %+v, want one for %s saying %q", evs, u.ID, reason)
	}
}

// TestActivityConfirmedByDirectory: an event Google's directory no longer
// bears out (suspended, then restored) changes nothing.
func TestActivityConfirmedByDirectory(t *testing.T) {
	f := newFake(t)
	d := seed(f)
	e := newEnv(t, f, nil)
	e.sync()
	gen := e.store.Generation(tenant)
	f.SuspendUser(d.alice)
	f.UpdateUser(d.alice, func(u *googlefake.User) { u.Suspended = false })
	if st := e.poll(); st.ActivityApplied != 0 || e.store.Generation(tenant) != gen || !e.userByGoogleID(d.alice).Active {
		t.Errorf("an unconfirmed suspension was applied: %+v", st)
	}
	if f.Calls("user") != 1 {
		t.Errorf("the user was fetched %d times, want 1", f.Calls("user"))
	}
}

// TestActivityLag: an event Google has not reported yet is applied by a
// later poll (its window overlaps the previous one).
func TestActivityLag(t *testing.T) {
	f := newFake(t)
	d := seed(f)
	e := newEnv(t, f, nil)
	e.sync()
	f.SetReportingLag(1 << 62)
	f.SuspendUser(d.alice)
	e.poll()
	if !e.userByGoogleID(d.alice).Active {
		t.Fatal("applied an event not reported yet")
	}
	f.SetReportingLag(0)
	e.poll()
	if e.userByGoogleID(d.alice).Active {
		t.Error("a late-reported suspension was missed")
	}
}
