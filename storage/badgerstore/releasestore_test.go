package badgerstore

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/portcullis/portcullis/storage"
)

// writeReleaseStore regenerates testdata/store-v<schema>.backup: a small
// store written by this code, as a Badger backup stream. Run it once per
// schema version, when a release changes the layout, and keep every older
// file: TestOpensReleasedStores opens each with the current code.
//
//	go test ./storage/badgerstore -run TestWriteReleaseStore -write-release-store
var writeReleaseStore = flag.Bool("write-release-store", false, "write testdata/store-v<schema>.backup from the current code")

// The release fixture's content. Fixed ids and times, so a test can
// compare what it reads back field by field.
const (
	fixtureTenant = "acme"
	fixtureAlice  = "00000000-0000-4000-8000-00000000a11c"
	fixtureBob    = "00000000-0000-4000-8000-000000000b0b"
	fixtureGroup  = "00000000-0000-4000-8000-0000000e0001"
	fixtureToken  = "00000000-0000-4000-8000-00000000f0ce"
)

var fixtureTime = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// populateFixture writes the release fixture through the Store API: users
// (one inactive), a group with a user and a nested-group member, a SCIM
// token, a session, a keyed record and events.
func populateFixture(t *testing.T, s storage.Store) {
	t.Helper()
	err := s.Update(context.Background(), fixtureTenant, func(tx storage.Tx) error {
		for _, u := range fixtureUsers() {
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		if err := tx.PutGroup(fixtureGroupRecord()); err != nil {
			return err
		}
		if _, err := tx.AddMember(fixtureGroup, storage.Member{ID: fixtureAlice, Type: storage.MemberUser}); err != nil {
			return err
		}
		if err := tx.PutSCIMToken(&storage.SCIMToken{ID: fixtureToken, Hash: storage.HashSecret("fixture-token"), Created: fixtureTime}); err != nil {
			return err
		}
		if err := tx.PutSession(fixtureSession()); err != nil {
			return err
		}
		if err := tx.PutRecord("saml-request", "id-1", []byte("pending"), 0); err != nil {
			return err
		}
		for _, e := range fixtureEvents() {
			if err := tx.AppendEvent(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("populating the fixture: %v", err)
	}
}

func fixtureUsers() []*storage.User {
	return []*storage.User{
		{ID: fixtureAlice, UserName: "alice@example.com", ExternalID: "ext-alice", DisplayName: "Alice",
			Emails: []string{"alice@example.com"}, Active: true, Source: storage.SourceSCIM,
			Attributes: json.RawMessage(`{"name":{"givenName":"Alice"}}`), Created: fixtureTime, Modified: fixtureTime},
		{ID: fixtureBob, UserName: "bob@example.com", Emails: []string{"bob@example.com"}, Active: false,
			Source: storage.SourceJIT, Created: fixtureTime, Modified: fixtureTime},
	}
}

func fixtureGroupRecord() *storage.Group {
	return &storage.Group{ID: fixtureGroup, DisplayName: "Engineering", ExternalID: "ext-eng",
		Source: storage.SourceSCIM, Created: fixtureTime, Modified: fixtureTime}
}

func fixtureSession() *storage.Session {
	return &storage.Session{IDHash: storage.HashSecret("fixture-session"), UserID: fixtureAlice,
		Created: fixtureTime, LastSeen: fixtureTime, ExpiresAt: fixtureTime.Add(100 * 365 * 24 * time.Hour),
		Protocol: "oidc", IDTokenHint: "hint"}
}

func fixtureEvents() []storage.Event {
	return []storage.Event{
		{Time: fixtureTime, Type: storage.EventUserCreated, Actor: fixtureToken, ResourceType: "User", ResourceID: fixtureAlice, After: "alice@example.com"},
		{Time: fixtureTime.Add(time.Second), Type: storage.EventGroupCreated, Actor: fixtureToken, ResourceType: "Group", ResourceID: fixtureGroup, After: "Engineering"},
		{Time: fixtureTime.Add(2 * time.Second), Type: storage.EventSignIn, Actor: fixtureAlice, Reason: "oidc"},
	}
}

// checkFixture reads every part of the fixture back from s.
func checkFixture(t *testing.T, s storage.Store) {
	t.Helper()
	// The fixture's events have fixed times, which age past the default
	// retention.
	if err := s.SetEventRetention(fixtureTenant, storage.EventRetention{MaxAge: 100 * 365 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	err := s.View(context.Background(), fixtureTenant, func(tx storage.ReadTx) error {
		for _, want := range fixtureUsers() {
			got, err := tx.GetUser(want.ID)
			if err != nil {
				t.Errorf("user %s: %v", want.ID, err)
				continue
			}
			want.Version = 1
			if !reflect.DeepEqual(got, want) {
				t.Errorf("user %s = %+v, want %+v", want.ID, got, want)
			}
			if byName, err := tx.UserByUserName(want.UserName); err != nil || byName.ID != want.ID {
				t.Errorf("userName index of %s: %v, %v", want.UserName, byName, err)
			}
		}
		if n, err := tx.CountUsers(); err != nil || n != 2 {
			t.Errorf("CountUsers = %d, %v; want 2", n, err)
		}
		g, err := tx.GetGroup(fixtureGroup)
		if err != nil || g.DisplayName != "Engineering" || g.ExternalID != "ext-eng" {
			t.Errorf("group = %+v, %v", g, err)
		}
		if gs, err := tx.GroupsByDisplayName("engineering"); err != nil || len(gs) != 1 {
			t.Errorf("GroupsByDisplayName = %v, %v", gs, err)
		}
		if ok, err := tx.IsMember(fixtureGroup, fixtureAlice); err != nil || !ok {
			t.Errorf("alice's membership: %v, %v", ok, err)
		}
		if n, err := tx.CountMembers(fixtureGroup); err != nil || n != 1 {
			t.Errorf("CountMembers = %d, %v; want 1", n, err)
		}
		if ids, err := tx.GroupsOf(fixtureAlice); err != nil || !reflect.DeepEqual(ids, []string{fixtureGroup}) {
			t.Errorf("GroupsOf(alice) = %v, %v", ids, err)
		}
		tok, err := tx.GetSCIMToken()
		if err != nil || tok.ID != fixtureToken || tok.Hash != storage.HashSecret("fixture-token") {
			t.Errorf("token = %+v, %v", tok, err)
		}
		sess, err := tx.GetSession(storage.HashSecret("fixture-session"))
		if err != nil || !reflect.DeepEqual(sess, fixtureSession()) {
			t.Errorf("session = %+v, %v; want %+v", sess, err, fixtureSession())
		}
		if v, err := tx.GetRecord("saml-request", "id-1"); err != nil || string(v) != "pending" {
			t.Errorf("record = %q, %v", v, err)
		}
		events, err := tx.Events(storage.EventQuery{})
		if err != nil {
			return err
		}
		want := fixtureEvents()
		if len(events) != len(want) {
			t.Fatalf("%d events, want %d: %+v", len(events), len(want), events)
		}
		for i, e := range events {
			w := want[len(want)-1-i] // newest first
			e.ID = ""
			if !reflect.DeepEqual(e, w) {
				t.Errorf("event %d = %+v, want %+v", i, e, w)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestWriteReleaseStore(t *testing.T) {
	if !*writeReleaseStore {
		t.Skip("run with -write-release-store to regenerate the fixture")
	}
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	populateFixture(t, s)
	checkFixture(t, s)
	path := filepath.Join("testdata", releaseFixtureName(currentSchemaVersion))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Backup(f, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

// loadRaw loads a raw Badger backup stream into a new database in dir,
// bypassing Open (and so any migration), as the older release left it.
func loadRaw(t *testing.T, path, dir string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Load(f, 16); err != nil {
		db.Close()
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
