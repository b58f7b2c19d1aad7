package badgerstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/portcullis/portcullis/storage"
)

func schemaOf(t *testing.T, s *Store) int {
	t.Helper()
	v, err := readSchemaVersion(s.db)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNewStoreRecordsSchemaVersion(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := schemaOf(t, s); v != SchemaVersion {
		t.Errorf("schema version of a new store = %d, want %d", v, SchemaVersion)
	}
	s.Close()
}

// TestOpensReleasedStores opens the store each release wrote (kept in
// testdata/, as a raw Badger backup stream) with the current code, which
// migrates it, and reads every record back.
func TestOpensReleasedStores(t *testing.T) {
	for version := 1; version <= SchemaVersion; version++ {
		path := filepath.Join("testdata", releaseFixtureName(version))
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && version > 1 {
			continue // only releases that changed the layout leave a file
		}
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			dir := t.TempDir()
			loadRaw(t, path, dir)
			for open := 1; open <= 2; open++ { // the second open has nothing to migrate
				s, err := Open(dir, nil)
				if err != nil {
					t.Fatalf("open %d: %v", open, err)
				}
				if v := schemaOf(t, s); v != SchemaVersion {
					t.Errorf("open %d: schema version %d, want %d", open, v, SchemaVersion)
				}
				checkFixture(t, s)
				s.Close()
			}
		})
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	populateFixture(t, s)
	if err := writeSchemaVersion(s.db, SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	s.Close()

	_, err = Open(dir, nil)
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open of a newer store: %v, want ErrNewerSchema", err)
	}
	for _, want := range []string{dir, fmt.Sprintf("schema version %d", SchemaVersion+1), fmt.Sprintf("up to %d", SchemaVersion)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// The refusal changed nothing: the version is still the newer one.
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := readSchemaVersion(db); err != nil || v != SchemaVersion+1 {
		t.Errorf("after the refusal the version is %d, %v", v, err)
	}
}

// TestBackupWhileServing backs up while writers commit, restores into a
// new directory and finds the fixture intact and every writer transaction
// either wholly in the backup or wholly out of it.
func TestBackupWhileServing(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	populateFixture(t, s)

	const busy, writers, perWriter = "busy", 2, 50
	var wg sync.WaitGroup
	started := make(chan struct{})
	var once sync.Once
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				err := s.Update(context.Background(), busy, func(tx storage.Tx) error {
					id := storage.NewID()
					if err := tx.PutUser(&storage.User{ID: id, UserName: id, Active: true, Source: storage.SourceSCIM}); err != nil {
						return err
					}
					return tx.AppendEvent(storage.Event{Type: storage.EventUserCreated, Actor: "t", ResourceID: id})
				})
				if err != nil {
					t.Error(err)
					return
				}
				once.Do(func() { close(started) })
			}
		}()
	}
	<-started
	var buf bytes.Buffer
	if err := s.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	dir := filepath.Join(t.TempDir(), "restored")
	if err := Restore(dir, &buf, nil); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	checkFixture(t, r)
	err = r.View(context.Background(), busy, func(tx storage.ReadTx) error {
		n, err := tx.CountUsers()
		if err != nil {
			return err
		}
		events, err := tx.Events(storage.EventQuery{Limit: 1000})
		if err != nil {
			return err
		}
		if len(events) != n {
			t.Errorf("restored %d users but %d events: the backup is not one snapshot", n, len(events))
		}
		for _, e := range events {
			if _, err := tx.GetUser(e.ResourceID); err != nil {
				t.Errorf("event for user %s restored without the user: %v", e.ResourceID, err)
			}
		}
		t.Logf("the backup caught %d of %d writes", n, writers*perWriter)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func backupOf(t *testing.T) []byte {
	t.Helper()
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	populateFixture(t, s)
	var buf bytes.Buffer
	if err := s.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRestoreRefuses(t *testing.T) {
	good := backupOf(t)
	newer := []byte(strings.Replace(string(good), fmt.Sprintf("schema=%d", SchemaVersion), fmt.Sprintf("schema=%d", SchemaVersion+1), 1))
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string) func() // returns cleanup
		file    []byte
		want    string
		wantIs  error
	}{
		{name: "not a backup", file: []byte("hello, world\n"), want: "not a Portcullis backup"},
		{name: "empty file", file: nil, want: "not a Portcullis backup"},
		{name: "newer schema", file: newer, wantIs: ErrNewerSchema},
		{name: "truncated", file: good[:len(good)-10-len(backupEnd)], want: "is the file complete"},
		{name: "no end line", file: good[:len(good)-len(backupEnd)], want: "is the file complete"},
		{name: "wrong end line", file: append(bytes.Clone(good[:len(good)-len(backupEnd)]), strings.Repeat("x", len(backupEnd))...), want: "cut short"},
		{name: "store with data", file: good, wantIs: ErrNotEmpty, prepare: func(t *testing.T, dir string) func() {
			s, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			populateFixture(t, s)
			s.Close()
			return func() {}
		}},
		{name: "store in use", file: good, want: "stop it, or restore into a new directory", prepare: func(t *testing.T, dir string) func() {
			s, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			return func() { s.Close() }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			if tt.prepare != nil {
				defer tt.prepare(t, dir)()
			}
			err := Restore(dir, bytes.NewReader(tt.file), nil)
			if err == nil {
				t.Fatal("Restore succeeded")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v, want %v", err, tt.wantIs)
			}
			if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

// TestRestoreAfterFailedRestore: a truncated file leaves the store empty,
// so the good file then restores.
func TestRestoreAfterFailedRestore(t *testing.T) {
	good := backupOf(t)
	dir := t.TempDir()
	if err := Restore(dir, bytes.NewReader(good[:len(good)-10]), nil); err == nil {
		t.Fatal("truncated restore succeeded")
	}
	if err := Restore(dir, bytes.NewReader(good), nil); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkFixture(t, s)
}

// TestRestoreOlderBackup restores a version 1 backup (the release fixture
// with a header) into a store a gateway has already created empty: the
// restored store is migrated, not left claiming the empty store's version.
func TestRestoreOlderBackup(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	f, err := os.Open(filepath.Join("testdata", releaseFixtureName(1)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	header := strings.NewReader(backupMagic + " schema=1\n")
	if err := Restore(dir, io.MultiReader(header, f, strings.NewReader(backupEnd)), nil); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := schemaOf(t, s); v != SchemaVersion {
		t.Errorf("schema version %d, want %d", v, SchemaVersion)
	}
	checkFixture(t, s)
}
