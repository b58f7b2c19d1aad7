package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
)

// tenantDump is everything a tenant holds that a reader can enumerate.
type tenantDump struct {
	Users    []*storage.User
	Groups   []*storage.Group
	Members  map[string][]storage.Member
	Token    *storage.SCIMToken
	Sessions map[string][]*storage.Session
	Events   []storage.Event
	Record   string
}

func dumpTenant(t *testing.T, s storage.Store, tenant string) tenantDump {
	t.Helper()
	d := tenantDump{Members: map[string][]storage.Member{}, Sessions: map[string][]*storage.Session{}}
	err := s.View(context.Background(), tenant, func(tx storage.ReadTx) error {
		err := tx.ScanUsers("", func(u *storage.User) (bool, error) {
			d.Users = append(d.Users, u)
			ss, err := tx.SessionsOf(u.ID)
			if len(ss) > 0 {
				d.Sessions[u.ID] = ss
			}
			return true, err
		})
		if err != nil {
			return err
		}
		err = tx.ScanGroups("", func(g *storage.Group) (bool, error) {
			d.Groups = append(d.Groups, g)
			return true, tx.Members(g.ID, func(m storage.Member) (bool, error) {
				d.Members[g.ID] = append(d.Members[g.ID], m)
				return true, nil
			})
		})
		if err != nil {
			return err
		}
		if d.Token, err = tx.GetSCIMToken(); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		rec, err := tx.GetRecord("test", "kept")
		d.Record = string(rec)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		d.Events, err = tx.Events(storage.EventQuery{Limit: 1000})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestBackupRestoreRoundTrip populates a running gateway through SCIM and
// the store, backs it up with the CLI while SCIM writes go on, restores
// the file with the CLI into a new directory, and finds every user, group,
// membership, token hash, session, record and event again.
func TestBackupRestoreRoundTrip(t *testing.T) {
	storeDir := filepath.Join(t.TempDir(), "store")
	cf, g := contractCaddyfile(t, storeDir)
	gatewaytest.Load(t, cf)
	live := runningApp().Store()

	acme := issueToken(t, g, "acme")
	var alice, bob scimUser
	a := call(t, "POST", g.scimBase("acme")+"/Users", acme, newUser("alice"))
	expect(t, a, http.StatusCreated, "alice")
	a.json(t, &alice)
	a = call(t, "POST", g.scimBase("acme")+"/Users", acme, newUser("bob"))
	expect(t, a, http.StatusCreated, "bob")
	a.json(t, &bob)
	expect(t, call(t, "POST", g.scimBase("acme")+"/Groups", acme, map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Engineering",
		"members":     []map[string]any{{"value": alice.ID}, {"value": bob.ID}},
	}), http.StatusCreated, "group")
	expect(t, call(t, "PATCH", g.scimBase("acme")+"/Users/"+bob.ID, acme, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []map[string]any{{"op": "replace", "path": "active", "value": false}},
	}), http.StatusOK, "deactivate bob")
	err := live.Update(context.Background(), "acme", func(tx storage.Tx) error {
		now := time.Now()
		if err := tx.PutSession(&storage.Session{IDHash: storage.HashSecret("s1"), UserID: alice.ID, Created: now, LastSeen: now, ExpiresAt: now.Add(time.Hour), Protocol: "oidc"}); err != nil {
			return err
		}
		return tx.PutRecord("test", "kept", []byte("value"), time.Hour)
	})
	if err != nil {
		t.Fatal(err)
	}

	// SCIM writes to globex go on while the backup streams.
	globex := issueToken(t, g, "globex")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			select {
			case <-stop:
				return
			default:
			}
			a, err := tryCall("POST", g.scimBase("globex")+"/Users", globex, newUser(fmt.Sprintf("u%d", i)))
			if err != nil || a.status != http.StatusCreated {
				t.Errorf("globex write %d: %v %d %s", i, err, a.status, a.body)
				return
			}
		}
	}()

	file := filepath.Join(t.TempDir(), "portcullis.backup")
	_, stderr, err := gatewaytest.RunCLI(t, "portcullis", "backup", file, "--address", g.admin)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "Backup of the store written to "+file) {
		t.Errorf("backup said %q", stderr)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v, mode %v; want 0600", err, fi.Mode())
	}

	restored := filepath.Join(t.TempDir(), "restored")
	if _, stderr, err := gatewaytest.RunCLI(t, "portcullis", "restore", file, "--dir", restored); err != nil {
		t.Fatalf("restore: %v\n%s", err, stderr)
	}
	// A second restore into the now full store is refused.
	_, stderr, err = gatewaytest.RunCLI(t, "portcullis", "restore", file, "--dir", restored)
	if err == nil || !strings.Contains(stderr, "not empty") {
		t.Errorf("restore into a full store: %v, %s", err, stderr)
	}
	// So is a restore into the store the gateway holds open.
	_, stderr, err = gatewaytest.RunCLI(t, "portcullis", "restore", file, "--dir", storeDir)
	if err == nil || !strings.Contains(stderr, "stop it") {
		t.Errorf("restore into the running gateway's store: %v, %s", err, stderr)
	}

	// Without --dir, restore finds the directory in the config file.
	viaConfig := filepath.Join(t.TempDir(), "via-config")
	cfFile := gatewaytest.WriteFile(t, t.TempDir(), "Caddyfile", strings.Replace(cf, storeDir, viaConfig, 1))
	if _, stderr, err := gatewaytest.RunCLI(t, "portcullis", "restore", file, "--config", cfFile, "--adapter", "caddyfile"); err != nil || !strings.Contains(stderr, "into "+viaConfig) {
		t.Errorf("restore --config: %v\n%s", err, stderr)
	}

	st, err := badgerstore.Open(restored, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	want, got := dumpTenant(t, live, "acme"), dumpTenant(t, st, "acme")
	if len(want.Users) != 2 || len(want.Groups) != 1 || len(want.Members) != 1 || want.Token == nil || len(want.Sessions) != 1 || want.Record != "value" || len(want.Events) < 5 {
		t.Fatalf("the live store lacks the test data: %+v", want)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("restored acme differs:\n got %+v\nwant %+v", got, want)
	}
	// globex was written during the backup: whatever the snapshot holds
	// is whole (each user with its event).
	gl := dumpTenant(t, st, "globex")
	created := 0
	for _, e := range gl.Events {
		if e.Type == storage.EventUserCreated {
			created++
		}
	}
	if created != len(gl.Users) || gl.Token == nil {
		t.Errorf("globex restored %d users and %d user.created events (token %v)", len(gl.Users), created, gl.Token)
	}
	t.Logf("the backup caught %d globex users", len(gl.Users))
}
