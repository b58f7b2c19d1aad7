package storagetest

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

const tenant = "acme"

func testUserCRUD(t *testing.T, h *harness) {
	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	u := &storage.User{
		ID:           "u1",
		UserName:     "Alice",
		ExternalID:   "ext-1",
		DisplayName:  "Alice A.",
		Emails:       []string{"alice@example.com", "a@example.org"},
		Active:       true,
		Source:       storage.SourceSCIM,
		PasswordHash: "salted-hash",
		Role:         "editor",
		Attributes:   json.RawMessage(`{"name":{"givenName":"Alice"}}`),
		Created:      created,
		Modified:     created,
	}
	h.putUser(tenant, u)
	if u.Version != 1 {
		t.Fatalf("Version after create = %d, want 1 (set on the caller's struct)", u.Version)
	}

	got, err := h.getUser(tenant, "u1")
	wantErr(t, "GetUser", err, nil)
	if got.UserName != "Alice" || got.ExternalID != "ext-1" || got.DisplayName != "Alice A." ||
		!slices.Equal(got.Emails, u.Emails) || !got.Active || got.Source != storage.SourceSCIM ||
		got.PasswordHash != "salted-hash" || got.Role != "editor" || got.Version != 1 || !got.Created.Equal(created) ||
		!got.Modified.Equal(created) {
		t.Fatalf("GetUser = %+v, want the stored fields of %+v", got, u)
	}
	var attrs map[string]any
	if err := json.Unmarshal(got.Attributes, &attrs); err != nil || attrs["name"] == nil {
		t.Fatalf("Attributes = %s (%v), want the stored JSON", got.Attributes, err)
	}

	// Creating with a zero Created gets one set.
	fresh := &storage.User{ID: "u2", UserName: "bob"}
	h.putUser(tenant, fresh)
	if fresh.Created.IsZero() {
		t.Fatal("PutUser left Created zero on create")
	}

	// Replace: Version increments, Created is kept even if the caller
	// sends another one, other fields are replaced.
	for i, want := range []int64{2, 3} {
		r := &storage.User{
			ID: "u1", UserName: "alice", DisplayName: "Alice " + string(rune('B'+i)),
			Active: false, Source: storage.SourceSCIM,
			Created:  time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
			Modified: created.Add(time.Duration(i+1) * time.Hour),
		}
		h.putUser(tenant, r)
		got, err := h.getUser(tenant, "u1")
		wantErr(t, "GetUser after replace", err, nil)
		if got.Version != want || r.Version != want {
			t.Fatalf("Version after replace %d = %d (caller sees %d), want %d", i+1, got.Version, r.Version, want)
		}
		if !got.Created.Equal(created) {
			t.Fatalf("Created after replace = %v, want kept %v", got.Created, created)
		}
		if got.DisplayName != r.DisplayName || got.Active || got.ExternalID != "" || len(got.Emails) != 0 {
			t.Fatalf("replace kept old fields: %+v", got)
		}
	}

	countUsers(t, h, "after create and replaces", 2)
	h.update(tenant, func(tx storage.Tx) error { return tx.DeleteUser("u1") })
	_, err = h.getUser(tenant, "u1")
	wantErr(t, "GetUser after delete", err, storage.ErrNotFound)
	countUsers(t, h, "after delete", 1)
	err = h.s.Update(t.Context(), tenant, func(tx storage.Tx) error { return tx.DeleteUser("u1") })
	wantErr(t, "DeleteUser of a missing user", err, storage.ErrNotFound)
	_, err = h.getUser(tenant, "nobody")
	wantErr(t, "GetUser of a missing user", err, storage.ErrNotFound)

	// A deleted user's id can be created again, starting at version 1.
	again := &storage.User{ID: "u1", UserName: "alice"}
	h.putUser(tenant, again)
	if again.Version != 1 {
		t.Fatalf("Version of a re-created user = %d, want 1", again.Version)
	}
	countUsers(t, h, "after re-create", 2)
}

func countUsers(t *testing.T, h *harness, step string, want int) {
	t.Helper()
	h.view(tenant, func(tx storage.ReadTx) error {
		n, err := tx.CountUsers()
		if err != nil || n != want {
			t.Fatalf("%s: CountUsers = %d, %v; want %d", step, n, err, want)
		}
		return nil
	})
}

func testUserNameUniqueness(t *testing.T, h *harness) {
	h.putUser(tenant, &storage.User{ID: "alice", UserName: "Alice"})
	h.putUser(tenant, &storage.User{ID: "bob", UserName: "bob"})

	steps := []struct {
		name string
		user storage.User
		want error
	}{
		{"create same name, other id", storage.User{ID: "x1", UserName: "Alice"}, storage.ErrUniqueness},
		{"create lower-case variant", storage.User{ID: "x2", UserName: "alice"}, storage.ErrUniqueness},
		{"create upper-case variant", storage.User{ID: "x3", UserName: "ALICE"}, storage.ErrUniqueness},
		{"rename other user onto it", storage.User{ID: "bob", UserName: "aLiCe"}, storage.ErrUniqueness},
		{"holder changes only case", storage.User{ID: "alice", UserName: "ALICE"}, nil},
		{"holder renames away", storage.User{ID: "alice", UserName: "alice2"}, nil},
		{"old name is free again", storage.User{ID: "bob", UserName: "Alice"}, nil},
		{"bob's old name is free", storage.User{ID: "carol", UserName: "BOB"}, nil},
		{"new name of the holder is taken", storage.User{ID: "dave", UserName: "Alice2"}, storage.ErrUniqueness},
	}
	for _, st := range steps {
		u := st.user
		err := h.s.Update(t.Context(), tenant, func(tx storage.Tx) error { return tx.PutUser(&u) })
		wantErr(t, st.name, err, st.want)
	}

	// Deleting the holder frees the name.
	h.update(tenant, func(tx storage.Tx) error { return tx.DeleteUser("carol") })
	h.putUser(tenant, &storage.User{ID: "erin", UserName: "bob"})

	// A failed PutUser changes nothing: bob still holds "Alice".
	h.view(tenant, func(tx storage.ReadTx) error {
		u, err := tx.UserByUserName("alice")
		wantErr(t, "UserByUserName(alice)", err, nil)
		if u.ID != "bob" {
			t.Fatalf("alice belongs to %q, want bob", u.ID)
		}
		n, err := tx.CountUsers()
		wantErr(t, "CountUsers", err, nil)
		if n != 3 {
			t.Fatalf("CountUsers = %d, want 3 (alice, bob, erin)", n)
		}
		return nil
	})
}

// userLookups is what every user index must answer at one point in time.
type userLookups struct {
	byUserName map[string]string   // userName (any case) -> id, "" = not found
	byExternal map[string][]string // externalId -> ids in order
	byEmail    map[string][]string // email (any case) -> ids in order
}

func checkUserLookups(t *testing.T, h *harness, step string, want userLookups) {
	t.Helper()
	h.view(tenant, func(tx storage.ReadTx) error {
		for name, id := range want.byUserName {
			u, err := tx.UserByUserName(name)
			if id == "" {
				wantErr(t, step+": UserByUserName("+name+")", err, storage.ErrNotFound)
				continue
			}
			wantErr(t, step+": UserByUserName("+name+")", err, nil)
			if u.ID != id {
				t.Fatalf("%s: UserByUserName(%q) = %q, want %q", step, name, u.ID, id)
			}
		}
		for ext, ids := range want.byExternal {
			us, err := tx.UsersByExternalID(ext)
			wantErr(t, step+": UsersByExternalID", err, nil)
			if got := userIDs(us); !slices.Equal(got, ids) {
				t.Fatalf("%s: UsersByExternalID(%q) = %v, want %v", step, ext, got, ids)
			}
		}
		for email, ids := range want.byEmail {
			us, err := tx.UsersByEmail(email)
			wantErr(t, step+": UsersByEmail", err, nil)
			if got := userIDs(us); !slices.Equal(got, ids) {
				t.Fatalf("%s: UsersByEmail(%q) = %v, want %v", step, email, got, ids)
			}
		}
		return nil
	})
}

func testUserIndexes(t *testing.T, h *harness) {
	steps := []struct {
		name   string
		change func(tx storage.Tx) error
		want   userLookups
	}{
		{
			name: "create",
			change: func(tx storage.Tx) error {
				return errors.Join(
					tx.PutUser(&storage.User{ID: "u2", UserName: "Bob", ExternalID: "E1", Emails: []string{"Shared@Example.com", "bob@example.com"}}),
					tx.PutUser(&storage.User{ID: "u1", UserName: "Alice", ExternalID: "E1", Emails: []string{"alice@example.com", "shared@example.com"}}),
				)
			},
			want: userLookups{
				byUserName: map[string]string{"alice": "u1", "ALICE": "u1", "Bob": "u2", "bob": "u2", "carol": ""},
				byExternal: map[string][]string{"E1": {"u1", "u2"}, "e1": nil, "": nil},
				byEmail: map[string][]string{
					"SHARED@example.com": {"u1", "u2"}, "alice@EXAMPLE.com": {"u1"},
					"bob@example.com": {"u2"}, "shared@example": nil, "": nil,
				},
			},
		},
		{
			name: "rename and replace emails and externalId",
			change: func(tx storage.Tx) error {
				return tx.PutUser(&storage.User{ID: "u1", UserName: "Alicia", ExternalID: "E2", Emails: []string{"alicia@example.com"}})
			},
			want: userLookups{
				byUserName: map[string]string{"alice": "", "alicia": "u1", "bob": "u2"},
				byExternal: map[string][]string{"E1": {"u2"}, "E2": {"u1"}},
				byEmail: map[string][]string{
					"shared@example.com": {"u2"}, "alice@example.com": nil, "ALICIA@example.com": {"u1"},
				},
			},
		},
		{
			name: "replace with no externalId and duplicate emails",
			change: func(tx storage.Tx) error {
				return tx.PutUser(&storage.User{ID: "u2", UserName: "bob", Emails: []string{"b@example.com", "B@EXAMPLE.COM"}})
			},
			want: userLookups{
				byUserName: map[string]string{"BOB": "u2"},
				byExternal: map[string][]string{"E1": nil, "E2": {"u1"}},
				byEmail:    map[string][]string{"shared@example.com": nil, "bob@example.com": nil, "b@example.com": {"u2"}},
			},
		},
		{
			name:   "delete",
			change: func(tx storage.Tx) error { return tx.DeleteUser("u1") },
			want: userLookups{
				byUserName: map[string]string{"alicia": "", "bob": "u2"},
				byExternal: map[string][]string{"E2": nil},
				byEmail:    map[string][]string{"alicia@example.com": nil, "b@example.com": {"u2"}},
			},
		},
		{
			name: "re-create under the old values",
			change: func(tx storage.Tx) error {
				return tx.PutUser(&storage.User{ID: "u3", UserName: "alicia", ExternalID: "E2", Emails: []string{"alicia@example.com"}})
			},
			want: userLookups{
				byUserName: map[string]string{"Alicia": "u3"},
				byExternal: map[string][]string{"E2": {"u3"}},
				byEmail:    map[string][]string{"alicia@example.com": {"u3"}},
			},
		},
	}
	for _, st := range steps {
		h.update(tenant, st.change)
		checkUserLookups(t, h, st.name, st.want)
	}
}

// testUserLongIndexValues: values far longer than any sane key still index
// and look up exactly (a backend may hash them, but must not mix them up).
func testUserLongIndexValues(t *testing.T, h *harness) {
	long := strings.Repeat("x", 3000)
	h.putUser(tenant, &storage.User{ID: "u1", UserName: long + "A", ExternalID: long + "1", Emails: []string{long + "@example.com"}})
	h.putUser(tenant, &storage.User{ID: "u2", UserName: long + "B", ExternalID: long + "2", Emails: []string{long + "@example.org"}})
	err := h.s.Update(t.Context(), tenant, func(tx storage.Tx) error {
		return tx.PutUser(&storage.User{ID: "u3", UserName: long + "a"})
	})
	wantErr(t, "PutUser of a long taken userName", err, storage.ErrUniqueness)
	checkUserLookups(t, h, "long values", userLookups{
		byUserName: map[string]string{long + "a": "u1", long + "b": "u2", long + "c": ""},
		byExternal: map[string][]string{long + "1": {"u1"}, long + "2": {"u2"}, long: nil},
		byEmail:    map[string][]string{strings.ToUpper(long) + "@example.com": {"u1"}, long + "@example.org": {"u2"}},
	})
}

func testScanUsers(t *testing.T, h *harness) {
	// Inserted out of order; scans come in id order.
	ids := []string{"u07", "u02", "u09", "u00", "u05", "u01", "u08", "u03", "u06", "u04"}
	h.update(tenant, func(tx storage.Tx) error {
		for _, id := range ids {
			if err := tx.PutUser(&storage.User{ID: id, UserName: "name-" + id}); err != nil {
				return err
			}
		}
		return nil
	})
	sorted := slices.Sorted(slices.Values(ids))
	scan := func(after string, stopAfter int) []string {
		var got []string
		h.view(tenant, func(tx storage.ReadTx) error {
			return tx.ScanUsers(after, func(u *storage.User) (bool, error) {
				got = append(got, u.ID)
				return stopAfter == 0 || len(got) < stopAfter, nil
			})
		})
		return got
	}
	cases := []struct {
		name      string
		after     string
		stopAfter int
		want      []string
	}{
		{"all", "", 0, sorted},
		{"after an existing id", "u03", 0, sorted[4:]},
		{"after a missing id", "u035", 0, sorted[4:]},
		{"after the last", "u09", 0, nil},
		{"after everything", "zzz", 0, nil},
		{"early stop", "", 3, sorted[:3]},
		{"early stop after cursor", "u05", 2, []string{"u06", "u07"}},
	}
	for _, c := range cases {
		if got := scan(c.after, c.stopAfter); !slices.Equal(got, c.want) {
			t.Errorf("%s: ScanUsers(%q) = %v, want %v", c.name, c.after, got, c.want)
		}
	}

	boom := errors.New("boom")
	err := h.s.View(t.Context(), tenant, func(tx storage.ReadTx) error {
		return tx.ScanUsers("", func(*storage.User) (bool, error) { return true, boom })
	})
	wantErr(t, "ScanUsers with fn error", err, boom)

	h.update(tenant, func(tx storage.Tx) error { return tx.DeleteUser("u04") })
	h.view(tenant, func(tx storage.ReadTx) error {
		n, err := tx.CountUsers()
		wantErr(t, "CountUsers", err, nil)
		if n != 9 {
			t.Fatalf("CountUsers = %d, want 9", n)
		}
		return nil
	})
	if got := scan("u03", 0); !slices.Equal(got, sorted[5:]) {
		t.Fatalf("ScanUsers after delete = %v, want %v", got, sorted[5:])
	}
}
