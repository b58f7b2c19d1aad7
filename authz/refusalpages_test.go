package authz

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/pages"
	"github.com/portcullis/portcullis/storage"
)

// TestRefusalPages: every refusal page says who the caller is (where known),
// offers the next steps, and names the audit event as the reference; a
// repeated denial within the minute shows the event that recorded it.
func TestRefusalPages(t *testing.T) {
	f := newFixture(t)
	ids := f.identities(threeRoles())
	vic := f.user("vic")
	gone := f.user("gone")
	vicCookie, goneCookie := f.signIn(vic), f.signIn(gone)
	f.update(func(tx storage.Tx) error {
		u := *gone
		u.Active = false
		return tx.PutUser(&u)
	})
	up := &upstream{}
	admin := serve(t, f.gate(ids, GateConfig{Policy: Policy{Require: "admin"}, Route: "admin", LogoutURL: "/sso/logout"}), up)

	denied := get(t, admin, "/admin", asBrowser, withCookie(vicCookie))
	evs := f.events(storage.EventAccessDenied)
	if denied.status != http.StatusForbidden || len(evs) != 1 {
		t.Fatalf("status %d, %d access.denied events", denied.status, len(evs))
	}
	for _, want := range []string{"Access denied", "You are signed in as", "User vic", "vic@example.com",
		`<code id="reference">` + evs[0].ID + `</code>`, `id="back" href="/"`, `id="switch-user" href="/sso/logout"`} {
		if !strings.Contains(denied.body, want) {
			t.Errorf("access denied page lacks %q:\n%s", want, denied.body)
		}
	}
	again := get(t, admin, "/admin", asBrowser, withCookie(vicCookie))
	if !strings.Contains(again.body, evs[0].ID) || len(f.events(storage.EventAccessDenied)) != 1 {
		t.Errorf("a second denial within the minute: want the first event's id as the reference and no new event")
	}

	inactive := get(t, admin, "/admin", asBrowser, withCookie(goneCookie))
	evs = f.events(storage.EventAccessDenied)
	if inactive.status != http.StatusForbidden || len(evs) != 2 {
		t.Fatalf("inactive: status %d, %d events", inactive.status, len(evs))
	}
	for _, want := range []string{"Your account is deactivated", "User gone", eventOf(evs, "system").ID, `id="switch-user" href="/portcullis/login`} {
		if !strings.Contains(inactive.body, want) {
			t.Errorf("inactive page lacks %q:\n%s", want, inactive.body)
		}
	}

	bad := get(t, admin, "/a;x=1/b", asBrowser)
	evs = f.events(storage.EventAccessDenied)
	if ev := eventOf(evs, "anonymous@"); bad.status != http.StatusBadRequest || !strings.Contains(bad.body, "Bad request") || !strings.Contains(bad.body, ev.ID) {
		t.Errorf("bad path: status %d, want the bad-request page with reference %s:\n%s", bad.status, ev.ID, bad.body)
	}
}

// TestOnRefusal: a hook that takes the refusal gets the complete page data,
// the gate writes no body, and Serve returns the hook's error; a hook that
// declines leaves the gate's own page; the sign-in redirect never reaches it.
func TestOnRefusal(t *testing.T) {
	f := newFixture(t)
	ids := f.identities(threeRoles())
	vic := f.user("vic")
	cookie := f.signIn(vic)
	errTaken := errors.New("taken")
	var got []pages.Data
	take := true
	g := f.gate(ids, GateConfig{Policy: Policy{Require: "editor"}, OnRefusal: func(r *http.Request, d *pages.Data) error {
		got = append(got, *d)
		if take {
			return errTaken
		}
		return nil
	}})
	serveOnce := func(path string, opts ...reqOpt) (*httptest.ResponseRecorder, error) {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		for _, o := range opts {
			o(r)
		}
		w := httptest.NewRecorder()
		err := g.Serve(w, r, func(http.ResponseWriter, *http.Request, *Identity) error {
			t.Fatal("refused request went on")
			return nil
		})
		return w, err
	}

	w, err := serveOnce("/x", asAPI, withCookie(cookie))
	if !errors.Is(err, errTaken) || w.Body.Len() != 0 || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("taken: err %v, body %q, headers %v", err, w.Body.String(), w.Header())
	}
	d := got[len(got)-1]
	if d.Kind != pages.AccessDenied || d.Status != 403 || d.Code != "forbidden" || d.RequiredRole != "editor" ||
		d.User == nil || d.User.Name != "vic" || d.Reference == "" || d.Title == "" {
		t.Errorf("hook got %+v", d)
	}

	if _, err := serveOnce("/x", asBrowser); err != nil || len(got) != 1 {
		t.Errorf("sign-in redirect: err %v, hook called %d times, want a redirect without the hook", err, len(got))
	}

	take = false
	w, err = serveOnce("/x", asBrowser, withCookie(cookie))
	if err != nil || w.Code != 403 || !strings.Contains(w.Body.String(), "Access denied") {
		t.Errorf("declined: err %v, status %d", err, w.Code)
	}
}

// eventOf is the event whose actor starts with actor (the fixture's clock
// stands still, so the order of events is not their order of writing).
func eventOf(evs []storage.Event, actor string) storage.Event {
	for _, e := range evs {
		if strings.HasPrefix(e.Actor, actor) {
			return e
		}
	}
	return storage.Event{ID: "no event of " + actor}
}
