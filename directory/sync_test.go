package directory_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/directory"
	"github.com/portcullis/portcullis/internal/googlefake"
	"github.com/portcullis/portcullis/storage"
)

func TestImport(t *testing.T) {
	f := newFake(t)
	d := seed(f)
	e := newEnv(t, f, nil)
	st := e.sync()
	if st.Result != directory.ResultOK || st.Counts.UsersCreated != 5 || st.Counts.GroupsCreated != 3 {
		t.Fatalf("status %+v", st)
	}
	if st.Counts.APICalls == 0 || st.Counts.APICalls != int64(f.Calls("")) {
		t.Errorf("api calls %d, the fake served %d", st.Counts.APICalls, f.Calls(""))
	}
	for _, tc := range []struct {
		id, name, display string
		active            bool
		emails            []string
	}{
		{d.alice, "alice@example.com", "Alice Archer", true, []string{"alice@example.com", "a@example.com", "alice.archer@example.com"}},
		{d.bob, "bob@example.com", "Bob Baker", true, []string{"bob@example.com"}},
		{d.dave, "dave@example.com", "Dave", false, []string{"dave@example.com"}},
		{d.erin, "erin@example.com", "Erin", false, []string{"erin@example.com"}},
	} {
		u := e.userByGoogleID(tc.id)
		if u.UserName != tc.name || u.DisplayName != tc.display || u.Active != tc.active ||
			u.Source != storage.SourceGoogle || !slices.Equal(u.Emails, tc.emails) {
			t.Errorf("user %s stored as %+v", tc.name, u)
		}
	}
	// Nested groups are flattened; the external member and the nested
	// group itself are not stored members.
	eng := e.groupByGoogleID(d.eng)
	if eng == nil || eng.DisplayName != "Engineering" {
		t.Fatalf("Engineering stored as %+v", eng)
	}
	want := map[string]bool{"alice@example.com": true, "bob@example.com": true, "carol@example.com": true}
	if got := e.memberNames(eng.ID); !mapsEqual(got, want) {
		t.Errorf("Engineering members %v, want %v", got, want)
	}
	if got := e.memberNames(e.groupByGoogleID(d.platform).ID); !mapsEqual(got, map[string]bool{"carol@example.com": true}) {
		t.Errorf("Platform members %v", got)
	}
	for _, ev := range e.events(storage.EventUserCreated, storage.EventGroupCreated, storage.EventMemberAdded) {
		if ev.Actor != "google" {
			t.Errorf("event %s by %q, want google", ev.Type, ev.Actor)
		}
	}
	if n := len(e.events(storage.EventMemberAdded)); n != 5 {
		t.Errorf("%d member_added events, want 5", n)
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func TestUpdate(t *testing.T) {
	f := newFake(t)
	d := seed(f)
	e := newEnv(t, f, nil)
	e.sync()
	f.UpdateUser(d.bob, func(u *googlefake.User) {
		u.PrimaryEmail, u.FamilyName, u.Aliases = "robert@example.com", "Brown", []string{"bob@example.com"}
	})
	f.UpdateUser(d.dave, func(u *googlefake.User) { u.Suspended = false })
	f.UpdateGroup(d.eng, func(g *googlefake.Group) { g.Name = "Engineering Team" })
	f.RemoveMember(d.eng, d.alice)
	f.AddUserMember(d.sales, d.bob)
	st := e.sync()
	c := st.Counts
	if c.UsersUpdated != 1 || c.UsersReactivated != 1 || c.GroupsUpdated != 1 || c.MembershipsRemoved != 1 || c.MembershipsAdded != 1 || c.UsersCreated != 0 {
		t.Fatalf("counts %+v", c)
	}
	bob := e.userByGoogleID(d.bob)
	if bob.UserName != "robert@example.com" || bob.DisplayName != "Bob Brown" || !slices.Equal(bob.Emails, []string{"robert@example.com", "bob@example.com"}) {
		t.Errorf("bob stored as %+v", bob)
	}
	if !e.userByGoogleID(d.dave).Active {
		t.Error("dave, unsuspended, is still inactive")
	}
	eng := e.groupByGoogleID(d.eng)
	if eng.DisplayName != "Engineering Team" || e.memberNames(eng.ID)["alice@example.com"] {
		t.Errorf("Engineering %+v members %v", eng, e.memberNames(eng.ID))
	}
	if len(e.events(storage.EventUserReactivated)) != 1 || len(e.events(storage.EventGroupUpdated)) != 1 {
		t.Error("reactivation or rename not audited")
	}
}

func TestSuspensionEndsSessions(t *testing.T) {
	f := newFake(t)
	d := seed(f)
	e := newEnv(t, f, nil)
	e.sync()
	alice := e.userByGoogleID(d.alice)
	e.addSession(alice.ID)
	f.UpdateUser(d.alice, func(u *googlefake.User) { u.Suspended = true })
	st := e.sync()
	if st.Counts.UsersDeactivated != 1 {
		t.Fatalf("counts %+v", st.Counts)
	}
	if u := e.userByGoogleID(d.alice); u.Active {
		t.Error("suspended user still active")
	}
	if n := e.sessions(alice.ID); n != 0 {
		t.Errorf("%d sessions left", n)
	}
	evs := e.events(storage.EventUserDeactivated)
	if len(evs) != 1 || evs[0].ResourceID != alice.ID || !strings.Contains(evs[0].Reason, "1 sessions ended") {
		t.Errorf("deactivation events %+v", evs)
	}
}

// TestGoneOnlyAfterCompleteListing: a user deleted in Google is deactivated
// (record kept, audited) only by a sync whose listings all completed; a
// 500 in the middle of the user listing changes nothing.
func TestGoneOnlyAfterCompleteListing(t *testing.T) {
	f := newFake(t)
	d := seed(f)
	for i := range 600 { // two pages of users
		f.AddUser(googlefake.User{PrimaryEmail: "user" + strconv.Itoa(i) + "@example.com", GivenName: "U"})
	}
	e := newEnv(t, f, nil)
	e.sync()
	gen := e.store.Generation(tenant)
	eventsBefore := len(e.events())

	f.DeleteUser(d.bob)
	f.DeleteGroup(d.sales)
	f.AddFault(googlefake.Fault{Path: "/admin/directory/v1/users", MidListing: true, Status: http.StatusInternalServerError, Reason: "backendError"})
	st := e.syncFails()
	if !strings.Contains(st.LastError, "500") || st.Counts.Retries == 0 {
		t.Errorf("status %+v", st)
	}
	if !e.userByGoogleID(d.bob).Active || e.groupByGoogleID(d.sales) == nil {
		t.Fatal("a failed listing deactivated or deleted something")
	}
	if g := e.store.Generation(tenant); g != gen {
		t.Errorf("generation moved %d → %d on a failed sync", gen, g)
	}
	if evs := e.events(); len(evs) != eventsBefore+1 || evs[0].Type != storage.EventSyncFailed || evs[0].Actor != "google" {
		t.Errorf("after a failed sync, events %+v", evs[:min(3, len(evs))])
	}

	f.ClearFaults()
	st = e.sync()
	if st.Counts.UsersDeactivated != 1 || st.Counts.GroupsDeleted != 1 {
		t.Fatalf("counts %+v", st.Counts)
	}
	bob := e.userByGoogleID(d.bob)
	if bob.Active {
		t.Error("bob, deleted in Google, still active")
	}
	if evs := e.events(storage.EventUserDeactivated); len(evs) != 1 || !strings.Contains(evs[0].Reason, "not in Google's user listing") {
		t.Errorf("deactivation events %+v", evs)
	}
}

func TestRateLimitsRetried(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault googlefake.Fault
	}{
		{"429 with Retry-After", googlefake.Fault{Status: 429, Reason: "rateLimitExceeded", RetryAfter: "1"}},
		{"429 without Retry-After", googlefake.Fault{Status: 429, Reason: "rateLimitExceeded"}},
		{"403 userRateLimitExceeded", googlefake.Fault{Status: 403, Reason: "userRateLimitExceeded"}},
		{"403 quotaExceeded with Retry-After", googlefake.Fault{Status: 403, Reason: "quotaExceeded", RetryAfter: "1"}},
		{"503", googlefake.Fault{Status: 503, Reason: "backendError"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			seed(f)
			e := newEnv(t, f, nil)
			tc.fault.Path, tc.fault.Times = "/admin/directory/v1/", 2
			f.AddFault(tc.fault)
			st := e.sync()
			if st.Counts.Retries != 2 || f.FaultsServed() != 2 || st.Counts.UsersCreated != 5 {
				t.Errorf("retries %d, faults served %d, counts %+v", st.Counts.Retries, f.FaultsServed(), st.Counts)
			}
			if tc.fault.RetryAfter != "" && st.Duration < 2e9 {
				t.Errorf("Retry-After: 1 twice, yet the sync took %s", st.Duration)
			}
		})
	}
	t.Run("403 forbidden is not retried", func(t *testing.T) {
		f := newFake(t)
		seed(f)
		e := newEnv(t, f, nil)
		f.AddFault(googlefake.Fault{Path: "/admin/directory/v1/groups", Status: 403, Reason: "forbidden"})
		st := e.syncFails()
		if st.Counts.Retries != 0 || f.Calls("users") != 0 {
			t.Errorf("status %+v, users listed %d times", st, f.Calls("users"))
		}
	})
}

func TestTokenFailure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(e *env)
	}{
		{"token endpoint fails", func(e *env) {
			e.fake.SetTokenFailure(http.StatusInternalServerError)
			e.syncer.Stop()
			e.syncer = e.newSyncer(nil) // no cached token
		}},
		{"token expired (401)", func(e *env) { e.fake.ExpireTokens() }},
		{"key not the service account's", func(e *env) {
			other := newFake(e.t)
			var key map[string]string
			_ = json.Unmarshal(other.Account.JSON, &key)
			key["token_uri"] = e.fake.TokenURL()
			key["client_email"] = e.fake.Account.ClientEmail
			b, _ := json.Marshal(key)
			e.syncer.Stop()
			e.syncer = e.newSyncer(func(c *directory.Config) { c.Credentials = b })
		}},
		{"wrong admin (no delegation)", func(e *env) {
			e.syncer.Stop()
			e.syncer = e.newSyncer(func(c *directory.Config) { c.AdminEmail = "someone@example.com" })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			d := seed(f)
			e := newEnv(t, f, nil)
			e.sync()
			alice := e.userByGoogleID(d.alice)
			f.DeleteUser(d.alice) // would be deactivated by a working sync
			gen, n := e.store.Generation(tenant), len(e.events())
			tc.break_(e)
			st := e.syncFails()
			if e.store.Generation(tenant) != gen || !e.userByGoogleID(d.alice).Active {
				t.Error("a failed sync changed stored users")
			}
			evs := e.events()
			if len(evs) != n+1 || evs[0].Type != storage.EventSyncFailed {
				t.Errorf("events after failure: %+v", evs[:min(2, len(evs))])
			}
			if st.Counts.UsersDeactivated != 0 || alice.ID == "" {
				t.Errorf("status %+v", st)
			}
		})
	}
}

func TestMappedGroupsVsAll(t *testing.T) {
	for _, tc := range []struct {
		name       string
		users      string
		mapped     []string
		wantUsers  []string
		wantGroups int
	}{
		{"all", directory.UsersAll, nil, []string{"alice", "bob", "carol", "dave", "erin"}, 3},
		{"mapped by name", directory.UsersMappedGroups, []string{"engineering"}, []string{"alice", "bob", "carol"}, 1},
		{"mapped nested group only", directory.UsersMappedGroups, []string{"Platform"}, []string{"carol"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			seed(f)
			e := newEnv(t, f, func(c *directory.Config) { c.Users, c.MappedGroups = tc.users, tc.mapped })
			e.sync()
			var names []string
			groups := 0
			e.view(func(tx storage.ReadTx) error {
				if err := tx.ScanUsers("", func(u *storage.User) (bool, error) {
					names = append(names, strings.TrimSuffix(u.UserName, "@example.com"))
					return true, nil
				}); err != nil {
					return err
				}
				groups, _ = tx.CountGroups()
				return nil
			})
			slices.Sort(names)
			if !slices.Equal(names, tc.wantUsers) || groups != tc.wantGroups {
				t.Errorf("users %v groups %d, want %v and %d", names, groups, tc.wantUsers, tc.wantGroups)
			}
		})
	}
	t.Run("leaving every mapped group deactivates", func(t *testing.T) {
		f := newFake(t)
		d := seed(f)
		e := newEnv(t, f, func(c *directory.Config) {
			c.Users, c.MappedGroups = directory.UsersMappedGroups, []string{"Engineering"}
		})
		e.sync()
		f.RemoveMember(d.eng, d.bob)
		st := e.sync()
		if st.Counts.UsersDeactivated != 1 || st.Counts.MembershipsRemoved != 1 || e.userByGoogleID(d.bob).Active {
			t.Errorf("counts %+v", st.Counts)
		}
	})
}

func TestNoOpResyncWritesNothing(t *testing.T) {
	f := newFake(t)
	seed(f)
	e := newEnv(t, f, nil)
	e.sync()
	gen, n := e.store.Generation(tenant), len(e.events())
	st := e.sync()
	if st.Counts != (directory.Counts{APICalls: st.Counts.APICalls}) {
		t.Errorf("a re-sync with nothing changed counted %+v", st.Counts)
	}
	if e.store.Generation(tenant) != gen || len(e.events()) != n {
		t.Errorf("a re-sync with nothing changed wrote: generation %d → %d, events %d → %d",
			gen, e.store.Generation(tenant), n, len(e.events()))
	}
}

// TestConcurrentSyncsJoin: asking during a sync joins the running one.
func TestConcurrentSyncsJoin(t *testing.T) {
	f := newFake(t)
	seed(f)
	e := newEnv(t, f, nil)
	f.AddFault(googlefake.Fault{Path: "/admin/directory/v1/users", Status: 429, Reason: "rateLimitExceeded", RetryAfter: "1", Times: 1})
	var wg sync.WaitGroup
	starts := make(chan directory.Status, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := e.syncer.Sync(context.Background())
			if err != nil {
				t.Error(err)
			}
			starts <- st
		}()
	}
	wg.Wait()
	close(starts)
	var first directory.Status
	for st := range starts {
		if first.LastStart.IsZero() {
			first = st
		} else if !st.LastStart.Equal(first.LastStart) {
			t.Errorf("two syncs ran: started %s and %s", first.LastStart, st.LastStart)
		}
	}
	if f.Calls("groups") != 1 {
		t.Errorf("groups listed %d times, want 1", f.Calls("groups"))
	}
}

func TestStartRunsInBackground(t *testing.T) {
	f := newFake(t)
	seed(f)
	e := newEnv(t, f, nil)
	f.AddFault(googlefake.Fault{Path: "/admin/directory/v1/groups", Status: 429, Reason: "rateLimitExceeded", RetryAfter: "1", Times: 1})
	e.syncer.Start() // returns before the sync, which waits a second
	if st := e.syncer.Status(); st.Result != "" {
		t.Fatalf("Start waited for the sync: %+v", st)
	}
	st, err := e.syncer.Sync(context.Background()) // joins the running one
	if err != nil || st.Counts.UsersCreated != 5 || st.NextRun.IsZero() {
		t.Errorf("status %+v err %v", st, err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*directory.Config)
		want   string
	}{
		{"no domain", func(c *directory.Config) { c.Domain = "" }, "domain and customer"},
		{"bad users", func(c *directory.Config) { c.Users = "some" }, "users must be"},
		{"mapped without map_group", func(c *directory.Config) { c.Users = directory.UsersMappedGroups }, "map_group"},
		{"bad key", func(c *directory.Config) { c.Credentials = []byte("{}") }, "service account key"},
		{"no admin", func(c *directory.Config) { c.AdminEmail = "" }, "admin_email"},
		{"bad endpoint", func(c *directory.Config) { c.APIEndpoint = "ftp://x" }, "api_endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			e := &env{t: t, fake: f}
			cfg := e.config(tc.change)
			cfg.Store = storeStub{}
			_, err := directory.New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// storeStub only fills Config.Store for New's checks; it is never used.
type storeStub struct{ storage.Store }

// TestOtherSources: a user created at sign-in (jit) under a Google user's
// address is taken over; one pushed over SCIM is left alone and counted.
func TestOtherSources(t *testing.T) {
	f := newFake(t)
	d := seed(f)
	e := newEnv(t, f, nil)
	jitID, scimID := storage.NewID(), storage.NewID()
	err := e.store.Update(context.Background(), tenant, func(tx storage.Tx) error {
		if err := tx.PutUser(&storage.User{ID: jitID, UserName: "alice@example.com", Active: true, Source: storage.SourceJIT}); err != nil {
			return err
		}
		return tx.PutUser(&storage.User{ID: scimID, UserName: "bob@example.com", Active: true, Source: storage.SourceSCIM})
	})
	if err != nil {
		t.Fatal(err)
	}
	st := e.sync()
	if st.Counts.UsersSkipped != 1 || st.Counts.UsersCreated != 3 || st.Counts.UsersUpdated != 1 {
		t.Errorf("counts %+v", st.Counts)
	}
	if a := e.userByGoogleID(d.alice); a.ID != jitID || a.Source != storage.SourceGoogle {
		t.Errorf("the jit user was not taken over: %+v", a)
	}
	e.view(func(tx storage.ReadTx) error {
		u, err := tx.GetUser(scimID)
		if err == nil && (u.Source != storage.SourceSCIM || u.ExternalID != "") {
			t.Errorf("the SCIM user was changed: %+v", u)
		}
		return err
	})
}
