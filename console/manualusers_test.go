package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// TestManualUsersAndTenantSessions: a manual user is created from the
// users page's form and deleted behind a confirmation; everyone is signed
// out behind a confirmation naming the consequence; each POST needs the
// CSRF token; every page has the operator's sign-out link.
func TestManualUsersAndTenantSessions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	op, err := f.h.tenants["acme"].Operator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		t.Helper()
		w := f.do(request{method: "GET", path: path, user: "root"})
		return w.Code, w.Body.String()
	}
	cookie, token := f.session("root")
	post := func(path string, form url.Values, withToken bool) *httptest.ResponseRecorder {
		t.Helper()
		if withToken {
			form.Set("csrf", token)
		}
		return f.do(request{method: "POST", path: path, user: "root", cookie: cookie, form: form,
			header: map[string]string{"Origin": "http://gw.test"}})
	}
	if code, page := get("/portcullis/acme/users"); code != http.StatusOK || !strings.Contains(page, `id="create-user"`) ||
		!strings.Contains(page, `<label for="nu-username">`) || !strings.Contains(page, `id="sign-out" href="/sso/logout"`) {
		t.Fatalf("users page: %d, no new user form or sign-out link\n%s", code, page)
	}
	form := url.Values{"userName": {"dora"}, "email": {"dora@acme.test"}, "displayName": {"Dora"}, "role": {"editor"}}
	if w := post("/portcullis/acme/users/new", form, false); w.Code != http.StatusForbidden {
		t.Fatalf("create without the CSRF token: %d", w.Code)
	}
	w := post("/portcullis/acme/users/new", form, true)
	loc := w.Header().Get("Location")
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "/portcullis/acme/users/") {
		t.Fatalf("create: %d %q\n%s", w.Code, loc, w.Body)
	}
	id := strings.TrimPrefix(strings.Split(loc, "?")[0], "/portcullis/acme/users/")
	u, err := op.User(ctx, id)
	if err != nil || u.Source != storage.SourceManual || u.Role != "editor" || u.DisplayName != "Dora" {
		t.Fatalf("created user %+v, %v", u, err)
	}
	if w := post("/portcullis/acme/users/new", form, true); w.Code != http.StatusConflict {
		t.Errorf("a duplicate userName: %d", w.Code)
	}
	if w := post("/portcullis/acme/users/new", url.Values{"userName": {"eve"}, "role": {"root"}}, true); w.Code != http.StatusBadRequest {
		t.Errorf("an unknown role: %d", w.Code)
	}
	if _, page := get("/portcullis/acme/users/" + id); !strings.Contains(page, `id="delete-user"`) {
		t.Errorf("a manual user's page has no delete link")
	}
	code, page := get("/portcullis/acme/users/" + id + "/delete")
	if code != http.StatusOK || !strings.Contains(page, "cannot be undone") || !strings.Contains(page, `id="confirm"`) {
		t.Fatalf("delete confirmation: %d\n%s", code, page)
	}
	if w := post("/portcullis/acme/users/"+id+"/delete", url.Values{}, false); w.Code != http.StatusForbidden {
		t.Fatalf("delete without the CSRF token: %d", w.Code)
	}
	if w := post("/portcullis/acme/users/"+id+"/delete", url.Values{}, true); w.Code != http.StatusSeeOther {
		t.Fatalf("delete: %d\n%s", w.Code, w.Body)
	}
	if _, err := op.User(ctx, id); err == nil {
		t.Error("the user is still there after the delete")
	}
	// An IdP-managed user cannot be deleted here.
	if err := f.store.Update(ctx, "acme", func(tx storage.Tx) error {
		return tx.PutUser(&storage.User{ID: "s1", UserName: "synced", Active: true, Source: storage.SourceSCIM})
	}); err != nil {
		t.Fatal(err)
	}
	if code, _ := get("/portcullis/acme/users/s1/delete"); code != http.StatusConflict {
		t.Errorf("delete confirmation of a SCIM user: %d", code)
	}
	if w := post("/portcullis/acme/users/s1/delete", url.Values{}, true); w.Code != http.StatusConflict {
		t.Errorf("deleting a SCIM user: %d", w.Code)
	}

	// Signing everyone out.
	if err := f.store.Update(ctx, "acme", func(tx storage.Tx) error {
		for _, s := range []string{"a", "b"} {
			if err := tx.PutSession(&storage.Session{IDHash: storage.HashSecret(s), UserID: "s1"}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, page := get("/portcullis/acme/"); !strings.Contains(page, `id="end-tenant-sessions"`) {
		t.Errorf("the tenant page has no sign-everyone-out link")
	}
	if code, page := get("/portcullis/acme/sessions/end"); code != http.StatusOK || !strings.Contains(page, "has to sign in again") {
		t.Fatalf("sign-out confirmation: %d\n%s", code, page)
	}
	if w := post("/portcullis/acme/sessions/end", url.Values{}, false); w.Code != http.StatusForbidden {
		t.Fatalf("ending sessions without the CSRF token: %d", w.Code)
	}
	if w := post("/portcullis/acme/sessions/end", url.Values{}, true); w.Code != http.StatusSeeOther {
		t.Fatalf("ending sessions: %d\n%s", w.Code, w.Body)
	}
	if err := f.store.View(ctx, "acme", func(tx storage.ReadTx) error {
		ss, err := tx.SessionsOf("s1")
		if err == nil && len(ss) != 0 {
			t.Errorf("%d sessions left", len(ss))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
