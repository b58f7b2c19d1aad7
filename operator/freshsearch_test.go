package operator_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portcullis/portcullis/operator"
	"github.com/portcullis/portcullis/scimhandler"
	"github.com/portcullis/portcullis/storage"
)

// TestSearchSeesWritesAtOnce: a user created through the operator or
// pushed over SCIM is listed by source and by substring right after the
// write, while the search index is older than the store (the clock stands
// still, so no background rebuild runs: the overlay of noted writes is what
// finds them). An operator's change of role or a SCIM rename shows too.
func TestSearchSeesWritesAtOnce(t *testing.T) {
	clock := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	e := newEnv(t, func(c *operator.Config) { c.Now = func() time.Time { return clock } })
	ctx := context.Background()
	for i := range 20 {
		e.user(fmt.Sprintf("person%02d", i), storage.SourceSCIM)
	}
	if err := e.svc.WarmSearchIndex(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := scimhandler.New(scimhandler.Config{Tenant: tenant, Store: e.store, UserWritten: e.svc.NoteUser})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	token, err := scimhandler.IssueToken(ctx, e.store, tenant, "admin")
	if err != nil {
		t.Fatal(err)
	}
	scim := func(method, path, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/scim/v2/"+tenant+path, bytes.NewReader([]byte(body)))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode >= 300 {
			t.Fatalf("SCIM %s %s: %d", method, path, res.StatusCode)
		}
	}
	list := func(q operator.UserQuery) []string {
		t.Helper()
		users, _, err := e.svc.ListUsers(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, u := range users {
			names = append(names, u.UserName+"/"+u.Source+"/"+u.Role)
		}
		return names
	}

	manual, err := e.svc.CreateManualUser(ctx, operator.ActorAdmin, operator.NewUser{UserName: "zed.manual", Email: "zed@acme.test",
		DisplayName: "Zed Manual", Role: "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	scim("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"yann.pushed","displayName":"Yann Pushed"}`)

	editor := "editor"
	for _, tc := range []struct {
		step string
		do   func()
		q    operator.UserQuery
		want string
	}{
		{"manual by source", nil, operator.UserQuery{Source: storage.SourceManual}, "[zed.manual/manual/viewer]"},
		{"manual by substring", nil, operator.UserQuery{Filter: "ed.man"}, "[zed.manual/manual/viewer]"},
		{"manual by display name", nil, operator.UserQuery{Filter: "zed man"}, "[zed.manual/manual/viewer]"},
		{"scim by substring", nil, operator.UserQuery{Filter: "ann.pu"}, "[yann.pushed/scim/viewer]"},
		{"scim by source", nil, operator.UserQuery{Source: storage.SourceSCIM, Filter: "pushed"}, "[yann.pushed/scim/viewer]"},
		{"role change", func() {
			if _, err := e.svc.UpdateUser(ctx, operator.ActorAdmin, manual.ID, operator.UserChange{Role: &editor}); err != nil {
				t.Fatal(err)
			}
		}, operator.UserQuery{Source: storage.SourceManual, Filter: "zed"}, "[zed.manual/manual/editor]"},
		{"scim rename: new name", func() {
			var id string
			users, _, _ := e.svc.ListUsers(ctx, operator.UserQuery{Filter: "yann"})
			if len(users) == 1 {
				id = users[0].ID
			}
			scim("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"userName","value":"xavier.renamed"}]}`)
		}, operator.UserQuery{Filter: "avier.ren"}, "[xavier.renamed/scim/viewer]"},
		{"scim rename: old name gone", nil, operator.UserQuery{Filter: "ann.pu"}, "[]"},
		{"deleted manual user gone", func() {
			if err := e.svc.DeleteUser(ctx, operator.ActorAdmin, manual.ID); err != nil {
				t.Fatal(err)
			}
		}, operator.UserQuery{Source: storage.SourceManual}, "[]"},
	} {
		if tc.do != nil {
			tc.do()
		}
		if got := fmt.Sprint(list(tc.q)); got != tc.want {
			t.Errorf("%s: %+v lists %s, want %s", tc.step, tc.q, got, tc.want)
		}
	}
}
