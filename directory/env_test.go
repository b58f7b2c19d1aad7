package directory_test

import (
	"context"
	"testing"
	"time"

	"github.com/portcullis/portcullis/directory"
	"github.com/portcullis/portcullis/internal/googlefake"
	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
)

const tenant = "acme"

// env is a real Badger store, a running fake Google and a Syncer between.
type env struct {
	t      testing.TB
	fake   *googlefake.Server
	store  *badgerstore.Store
	syncer *directory.Syncer
}

func newFake(t testing.TB) *googlefake.Server {
	f, err := googlefake.New("example.com", "it-admin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func newEnv(t testing.TB, f *googlefake.Server, change func(*directory.Config)) *env {
	bs, err := badgerstore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	e := &env{t: t, fake: f, store: bs}
	e.syncer = e.newSyncer(change)
	return e
}

func (e *env) config(change func(*directory.Config)) directory.Config {
	cfg := directory.Config{
		Tenant: tenant, Store: e.store, Domain: "example.com",
		Credentials: e.fake.Account.JSON, AdminEmail: e.fake.AdminEmail, APIEndpoint: e.fake.URL(),
		Users: directory.UsersAll,
		Retry: directory.RetryPolicy{Attempts: 4, Base: 5 * time.Millisecond, Max: 40 * time.Millisecond, MaxRetryAfter: 2 * time.Second},
	}
	if change != nil {
		change(&cfg)
	}
	return cfg
}

func (e *env) newSyncer(change func(*directory.Config)) *directory.Syncer {
	s, err := directory.New(e.config(change))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(s.Stop)
	return s
}

func (e *env) sync() directory.Status {
	e.t.Helper()
	st, err := e.syncer.Sync(context.Background())
	if err != nil {
		e.t.Fatalf("sync: %v (status %+v)", err, st)
	}
	return st
}

func (e *env) syncFails() directory.Status {
	e.t.Helper()
	st, err := e.syncer.Sync(context.Background())
	if err == nil || st.Result != directory.ResultFailed || st.LastError == "" {
		e.t.Fatalf("sync should have failed: err %v, status %+v", err, st)
	}
	return st
}

func (e *env) userByGoogleID(id string) *storage.User {
	e.t.Helper()
	var u *storage.User
	e.view(func(tx storage.ReadTx) error {
		us, err := tx.UsersByExternalID(id)
		if len(us) == 1 {
			u = us[0]
		}
		return err
	})
	if u == nil {
		e.t.Fatalf("no stored user with Google id %s", id)
	}
	return u
}

func (e *env) groupByGoogleID(id string) *storage.Group {
	e.t.Helper()
	var g *storage.Group
	e.view(func(tx storage.ReadTx) error {
		gs, err := tx.GroupsByExternalID(id)
		if len(gs) == 1 {
			g = gs[0]
		}
		return err
	})
	return g
}

// memberNames lists the userNames of the group's members.
func (e *env) memberNames(groupID string) map[string]bool {
	out := map[string]bool{}
	e.view(func(tx storage.ReadTx) error {
		return tx.Members(groupID, func(m storage.Member) (bool, error) {
			u, err := tx.GetUser(m.ID)
			if err != nil {
				return false, err
			}
			out[u.UserName] = true
			return true, nil
		})
	})
	return out
}

func (e *env) view(fn func(storage.ReadTx) error) {
	e.t.Helper()
	if err := e.store.View(context.Background(), tenant, fn); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) events(types ...string) []storage.Event {
	var evs []storage.Event
	e.view(func(tx storage.ReadTx) error {
		var err error
		evs, err = tx.Events(storage.EventQuery{Types: types, Limit: 1000})
		return err
	})
	return evs
}

// addSession signs the user in (a stored session), returning its hash.
func (e *env) addSession(userID string) [32]byte {
	_, h := storage.NewSecret()
	err := e.store.Update(context.Background(), tenant, func(tx storage.Tx) error {
		now := time.Now()
		return tx.PutSession(&storage.Session{IDHash: h, UserID: userID, Created: now, LastSeen: now,
			ExpiresAt: now.Add(time.Hour), Protocol: "oidc"})
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

func (e *env) sessions(userID string) int {
	var n int
	e.view(func(tx storage.ReadTx) error {
		ss, err := tx.SessionsOf(userID)
		n = len(ss)
		return err
	})
	return n
}

// domain is a small directory: alice (aliases) and bob in Engineering,
// which nests Platform (carol); dave suspended; erin archived; an external
// address in Engineering; Sales empty.
type domain struct {
	alice, bob, carol, dave, erin string
	eng, platform, sales          string
}

func seed(f *googlefake.Server) domain {
	var d domain
	d.alice = f.AddUser(googlefake.User{PrimaryEmail: "alice@example.com", GivenName: "Alice", FamilyName: "Archer", Aliases: []string{"a@example.com", "alice.archer@example.com"}})
	d.bob = f.AddUser(googlefake.User{PrimaryEmail: "bob@example.com", GivenName: "Bob", FamilyName: "Baker"})
	d.carol = f.AddUser(googlefake.User{PrimaryEmail: "carol@example.com", GivenName: "Carol", FamilyName: "Cole"})
	d.dave = f.AddUser(googlefake.User{PrimaryEmail: "dave@example.com", GivenName: "Dave", Suspended: true})
	d.erin = f.AddUser(googlefake.User{PrimaryEmail: "erin@example.com", GivenName: "Erin", Archived: true})
	d.eng = f.AddGroup(googlefake.Group{Email: "eng@example.com", Name: "Engineering"})
	d.platform = f.AddGroup(googlefake.Group{Email: "platform@example.com", Name: "Platform"})
	d.sales = f.AddGroup(googlefake.Group{Email: "sales@example.com", Name: "Sales"})
	f.AddUserMember(d.eng, d.alice)
	f.AddUserMember(d.eng, d.bob)
	f.AddGroupMember(d.eng, d.platform)
	f.AddUserMember(d.platform, d.carol)
	f.AddExternalMember(d.eng, "contractor@partner.example")
	f.AddUserMember(d.sales, d.dave)
	return d
}
