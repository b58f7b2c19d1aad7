package console

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// TestUsersPages: the users list pages with a cursor and searches, and a
// user's page changes a manual user and refuses an IdP-managed one.
func TestUsersPages(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	op, err := f.h.tenants["acme"].Operator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const manual = usersPage + 5
	err = f.store.Update(ctx, "acme", func(tx storage.Tx) error {
		for i := range manual {
			id := fmt.Sprintf("m%03d", i)
			if err := tx.PutUser(&storage.User{ID: id, UserName: fmt.Sprintf("user%03d", i), Active: true,
				Source: storage.SourceManual, Role: "viewer"}); err != nil {
				return err
			}
		}
		return tx.PutUser(&storage.User{ID: "s1", UserName: "synced", DisplayName: "Sam Synced", Active: true, Source: storage.SourceSCIM})
	})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) string {
		t.Helper()
		w := f.do(request{method: "GET", path: path, user: "root"})
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d\n%s", path, w.Code, w.Body)
		}
		return w.Body.String()
	}
	rows := regexp.MustCompile(`<th scope="row"><a href="/portcullis/acme/users/`)
	next := regexp.MustCompile(`id="next" rel="next" href="([^"]+)"`)

	first := get("/portcullis/acme/users")
	if n := len(rows.FindAllString(first, -1)); n != usersPage {
		t.Errorf("first page: %d users, want %d", n, usersPage)
	}
	m := next.FindStringSubmatch(first)
	if m == nil {
		t.Fatal("first page: no next link")
	}
	second := get(html.UnescapeString(m[1]))
	if n := len(rows.FindAllString(second, -1)); n != manual+1-usersPage {
		t.Errorf("second page: %d users, want %d", n, manual+1-usersPage)
	}
	if next.MatchString(second) {
		t.Error("second page: a next link on the last page")
	}

	for _, tc := range []struct {
		query string
		want  []string
		count int
	}{
		{"q=sam", []string{"synced", "SCIM"}, 1},
		{"q=user05", []string{"user050", "user054"}, 5},
		{"source=scim", []string{"synced"}, 1},
		{"q=nobody", []string{"No user matches"}, 0},
	} {
		body := get("/portcullis/acme/users?" + tc.query)
		if n := len(rows.FindAllString(body, -1)); n != tc.count {
			t.Errorf("%s: %d users, want %d", tc.query, n, tc.count)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: page lacks %q", tc.query, w)
			}
		}
	}

	cookie, token := f.session("root")
	post := func(path string, form url.Values) (int, string) {
		t.Helper()
		form.Set("csrf", token)
		w := f.do(request{method: "POST", path: path, user: "root", cookie: cookie, form: form,
			header: map[string]string{"Origin": "http://gw.test"}})
		return w.Code, w.Body.String()
	}
	// A manual user's role, set from their page.
	if code, body := post("/portcullis/acme/users/m000/update", url.Values{"role": {"editor"}}); code != http.StatusSeeOther {
		t.Fatalf("setting a manual user's role: %d\n%s", code, body)
	}
	if u, err := op.User(ctx, "m000"); err != nil || u.Role != "editor" {
		t.Errorf("manual user after the change: %+v, %v", u, err)
	}
	if code, _ := post("/portcullis/acme/users/m000/update", url.Values{"active": {"false"}}); code != http.StatusSeeOther {
		t.Errorf("deactivating a manual user: %d", code)
	}
	// An IdP-managed user is refused, with the reason.
	code, body := post("/portcullis/acme/users/s1/update", url.Values{"role": {"admin"}})
	if code != http.StatusConflict || !strings.Contains(body, "IdP") {
		t.Errorf("changing a SCIM user: %d\n%s", code, body)
	}
	if u, err := op.User(ctx, "s1"); err != nil || u.Source != "scim" || u.Role == "admin" {
		t.Errorf("SCIM user after the refusal: %+v, %v", u, err)
	}
	// The synced user's page offers no role form.
	if page := get("/portcullis/acme/users/s1"); strings.Contains(page, `id="manual-role"`) || !strings.Contains(page, "managed by your IdP") {
		t.Errorf("a synced user's page:\n%s", page)
	}
	if code, _ := post("/portcullis/acme/users/nope/update", url.Values{"role": {"admin"}}); code != http.StatusNotFound {
		t.Errorf("changing an unknown user: %d", code)
	}
}

// TestGroupsMapping: the dropdown sets a stored mapping and "Default"
// removes it; a config-pinned group is refused.
func TestGroupsMapping(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	op, _ := f.h.tenants["acme"].Operator(ctx)
	err := f.store.Update(ctx, "acme", func(tx storage.Tx) error {
		if err := tx.PutGroup(&storage.Group{ID: "g1", DisplayName: "Sales"}); err != nil {
			return err
		}
		return tx.PutGroup(&storage.Group{ID: "g2", DisplayName: "Admins"})
	})
	if err != nil {
		t.Fatal(err)
	}
	cookie, token := f.session("root")
	post := func(form url.Values) (int, string) {
		t.Helper()
		form.Set("csrf", token)
		w := f.do(request{method: "POST", path: "/portcullis/acme/groups/mapping", user: "root", cookie: cookie, form: form})
		return w.Code, w.Body.String()
	}
	level := func(id string) (string, string) {
		t.Helper()
		groups, err := op.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups {
			if g.ID == id {
				return g.Level, g.LevelFrom
			}
		}
		t.Fatalf("no group %s", id)
		return "", ""
	}
	if code, body := post(url.Values{"group": {"g1"}, "role": {"editor"}}); code != http.StatusSeeOther {
		t.Fatalf("mapping: %d\n%s", code, body)
	}
	if l, from := level("g1"); l != "editor" || from != "stored" {
		t.Errorf("Sales after mapping: %s from %s", l, from)
	}
	page := f.do(request{method: "GET", path: "/portcullis/acme/groups", user: "root"}).Body.String()
	if !strings.Contains(page, `<option value="editor" selected>`) || strings.Contains(page, `id="level-g2"`) {
		t.Errorf("groups page: the stored level is not selected, or the pinned group has a dropdown:\n%s", page)
	}
	if code, _ := post(url.Values{"group": {"g1"}, "role": {""}}); code != http.StatusSeeOther {
		t.Fatalf("unmapping: %d", code)
	}
	if l, from := level("g1"); l != "viewer" || from != "default" {
		t.Errorf("Sales after unmapping: %s from %s", l, from)
	}
	if code, body := post(url.Values{"group": {"g2"}, "role": {"viewer"}}); code != http.StatusConflict || !strings.Contains(body, "map_group") {
		t.Errorf("mapping a config-pinned group: %d\n%s", code, body)
	}
	if code, _ := post(url.Values{"group": {"g1"}, "role": {"root"}}); code != http.StatusBadRequest {
		t.Errorf("mapping to an unknown role: %d", code)
	}
}
