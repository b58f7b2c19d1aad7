package scimhandler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/portcullis/portcullis/scimhandler"
	"github.com/portcullis/portcullis/storage"
)

// Fuzz targets of the SCIM request bodies, through the real handler on a
// real Badger store. Opening a store per input would make each exec take
// tens of milliseconds, so each fuzz worker opens one store (in
// t.TempDir()) and resets its resources to a known state before every
// input. Seed corpora (the golden requests of Entra ID, Okta and JumpCloud,
// the unit tests' bodies and the hostile bodies of
// TestNoClientInputGets5xx) are in testdata/fuzz/<FuzzName>/. To fuzz:
//
//	go test ./scimhandler -run '^$' -fuzz '^FuzzSCIMPatchBody$' -fuzztime 3m -fuzzminimizetime 10s -parallel 1
//
// (-fuzzminimizetime: the store's background work makes coverage noisy,
// and minimising each "new" input for the default 60 s eats the run.)

// fuzzBaseUser is what the fuzzed user is reset to before every input.
const fuzzBaseUser = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
	"userName": "fuzz.base@example.com",
	"externalId": "00ufuzz",
	"name": {"givenName": "Barbara", "familyName": "Jensen"},
	"displayName": "Babs Jensen",
	"active": true,
	"emails": [{"value": "fuzz.base@example.com", "type": "work", "primary": true},
		{"value": "babs@home.example", "type": "home"}],
	"phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Tours",
		"manager": {"value": "m-1"}},
	"urn:example:custom:1.0:User": {"badge": "A1"}
}`

// lockedBuffer collects the handler's error logs (a recovered panic's
// stack among them) to print when an input fails.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Sync() error { return nil }

func (b *lockedBuffer) take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	b.buf.Reset()
	return s
}

// fuzzEnv is one fuzz worker's handler and store: a user, a second user
// and a group holding both.
type fuzzEnv struct {
	e                  *testEnv
	logs               *lockedBuffer
	user, user2, group string
}

func newFuzzEnv(f *testing.F) *fuzzEnv {
	logs := &lockedBuffer{}
	e := newEnv(f, func(c *scimhandler.Config) {
		c.Logger = zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()),
			logs, zap.ErrorLevel))
	})
	fe := &fuzzEnv{e: e, logs: logs}
	fe.user = e.createUser("fuzz.base@example.com")
	fe.user2 = e.createUser("fuzz.second@example.com")
	fe.group = e.createGroup("Fuzzers", fe.user, fe.user2)
	return fe
}

// serve sends one request straight to the handler.
func (fe *fuzzEnv) serve(method, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://127.0.0.1/scim/v2/"+tenant+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+fe.e.token)
	req.Header.Set("Content-Type", "application/scim+json")
	rec := httptest.NewRecorder()
	fe.e.h.ServeHTTP(rec, req)
	return rec
}

// must sends a request the fuzz harness itself needs to succeed.
func (fe *fuzzEnv) must(t *testing.T, method, path string, body []byte, status int) *httptest.ResponseRecorder {
	t.Helper()
	rec := fe.serve(method, path, body)
	if rec.Code != status {
		t.Fatalf("%s %s: status %d, want %d: %s\n%s", method, path, rec.Code, status, rec.Body, fe.logs.take())
	}
	return rec
}

// reset puts the user and the group back to their base state, so every
// input starts from the same place (and a crasher replays).
func (fe *fuzzEnv) reset(t *testing.T) {
	t.Helper()
	fe.logs.take()
	fe.must(t, "PUT", "/Users/"+fe.user, []byte(fuzzBaseUser), http.StatusOK)
	// Passwords are discarded: whatever an input sent, none is stored.
	err := fe.e.badger.View(context.Background(), tenant, func(tx storage.ReadTx) error {
		u, err := tx.GetUser(fe.user)
		if err == nil && u.PasswordHash != "" {
			return fmt.Errorf("a password hash was stored")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	group := fmt.Sprintf(`{"displayName":"Fuzzers","externalId":"00gfuzz","members":[{"value":%q},{"value":%q}]}`,
		fe.user, fe.user2)
	fe.must(t, "PUT", "/Groups/"+fe.group, []byte(group), http.StatusOK)
}

// state is everything a refused request must leave as it was: the store's
// generation (no commit at all), the user and group records, the group's
// members and the number of users.
func (fe *fuzzEnv) state(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "generation=%d\n", fe.e.badger.Generation(tenant))
	err := fe.e.badger.View(context.Background(), tenant, func(tx storage.ReadTx) error {
		u, err := tx.GetUser(fe.user)
		if err != nil {
			return err
		}
		g, err := tx.GetGroup(fe.group)
		if err != nil {
			return err
		}
		n, err := tx.CountUsers()
		if err != nil {
			return err
		}
		ju, _ := json.Marshal(u)
		jg, _ := json.Marshal(g)
		fmt.Fprintf(&b, "user=%s\ngroup=%s\nusers=%d\nmembers=", ju, jg, n)
		return tx.Members(fe.group, func(m storage.Member) (bool, error) {
			fmt.Fprintf(&b, "%s/%s ", m.ID, m.Type)
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// check fails on a 5xx, on an error answer that is not a SCIM error body,
// and on a refused request that changed anything.
func (fe *fuzzEnv) check(t *testing.T, what string, rec *httptest.ResponseRecorder, before string, body []byte) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("%s %.300q: status %d: %s\n%s", what, body, rec.Code, rec.Body, fe.logs.take())
	}
	if rec.Code < 400 {
		return
	}
	var eb struct {
		Schemas []string `json:"schemas"`
		Status  string   `json:"status"`
	}
	if rec.Header().Get("Content-Type") != "application/scim+json" || json.Unmarshal(rec.Body.Bytes(), &eb) != nil ||
		eb.Status != fmt.Sprint(rec.Code) || len(eb.Schemas) != 1 {
		t.Fatalf("%s %.300q: status %d without a SCIM error body: %s", what, body, rec.Code, rec.Body)
	}
	if after := fe.state(t); after != before {
		t.Fatalf("%s %.300q: refused with %d but the store changed:\nbefore %s\nafter  %s", what, body, rec.Code, before, after)
	}
}

// checkIndexed fails unless what the store indexes of the resource at
// target (its typed fields and memberships) agrees with the document GET
// answers: lists use the one, filters the other.
func (fe *fuzzEnv) checkIndexed(t *testing.T, target string, body []byte) {
	t.Helper()
	rec := fe.must(t, "GET", target, nil, http.StatusOK)
	var doc struct {
		ID          string `json:"id"`
		UserName    string `json:"userName"`
		ExternalID  string `json:"externalId"`
		DisplayName string `json:"displayName"`
		Active      *bool  `json:"active"`
		Emails      []struct {
			Value   string `json:"value"`
			Primary bool   `json:"primary"`
		} `json:"emails"`
		Members []struct {
			Value string `json:"value"`
		} `json:"members"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("GET %s after %.300q: %v: %s", target, body, err, rec.Body)
	}
	var got, want string
	err := fe.e.badger.View(context.Background(), tenant, func(tx storage.ReadTx) error {
		if strings.HasPrefix(target, "/Users/") {
			u, err := tx.GetUser(doc.ID)
			if err != nil {
				return err
			}
			var primary, others []string
			for _, e := range doc.Emails {
				switch {
				case e.Value == "":
				case e.Primary:
					primary = append(primary, e.Value)
				default:
					others = append(others, e.Value)
				}
			}
			active := doc.Active != nil && *doc.Active
			want = fmt.Sprintf("%q %q %q %v %q", doc.UserName, doc.ExternalID, doc.DisplayName, active, append(primary, others...))
			got = fmt.Sprintf("%q %q %q %v %q", u.UserName, u.ExternalID, u.DisplayName, u.Active, u.Emails)
			return nil
		}
		g, err := tx.GetGroup(doc.ID)
		if err != nil {
			return err
		}
		var members []string
		if err := tx.Members(doc.ID, func(m storage.Member) (bool, error) {
			members = append(members, m.ID)
			return true, nil
		}); err != nil {
			return err
		}
		var docMembers []string
		for _, m := range doc.Members {
			docMembers = append(docMembers, m.Value)
		}
		sort.Strings(docMembers)
		want = fmt.Sprintf("%q %q %q", doc.DisplayName, doc.ExternalID, docMembers)
		got = fmt.Sprintf("%q %q %q", g.DisplayName, g.ExternalID, members)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("%s after %.300q: the store indexes %s, the document says %s", target, body, got, want)
	}
}

// FuzzSCIMUserBody sends each input as the body of POST /Users and of PUT
// on an existing user: never a 5xx, and a refused request changes nothing.
func FuzzSCIMUserBody(f *testing.F) {
	fe := newFuzzEnv(f)
	f.Add([]byte(fuzzBaseUser))
	f.Fuzz(func(t *testing.T, body []byte) {
		fe.reset(t)
		before := fe.state(t)
		rec := fe.serve("POST", "/Users", body)
		fe.check(t, "POST /Users", rec, before, body)
		if rec.Code == http.StatusCreated {
			var created struct{ ID string }
			if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || created.ID == "" {
				t.Fatalf("POST /Users answered 201 with %s", rec.Body)
			}
			fe.checkIndexed(t, "/Users/"+created.ID, body)
			fe.must(t, "DELETE", "/Users/"+created.ID, nil, http.StatusNoContent)
		}

		before = fe.state(t)
		rec = fe.serve("PUT", "/Users/"+fe.user, body)
		fe.check(t, "PUT /Users/{id}", rec, before, body)
		if rec.Code < 300 {
			fe.checkIndexed(t, "/Users/"+fe.user, body)
		}
	})
}

// FuzzSCIMGroupBody sends each input as the body of POST /Groups and of
// PUT on a group of two members: never a 5xx, and a refused request
// changes nothing. "{{user}}", "{{user2}}" and "{{group}}" in the input
// become the resources' ids.
func FuzzSCIMGroupBody(f *testing.F) {
	fe := newFuzzEnv(f)
	f.Add([]byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Tour Guides","members":[{"value":"{{user}}"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		body = fe.withIDs(body)
		fe.reset(t)
		before := fe.state(t)
		rec := fe.serve("POST", "/Groups", body)
		fe.check(t, "POST /Groups", rec, before, body)
		if rec.Code == http.StatusCreated {
			var created struct{ ID string }
			if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || created.ID == "" {
				t.Fatalf("POST /Groups answered 201 with %s", rec.Body)
			}
			fe.checkIndexed(t, "/Groups/"+created.ID, body)
			fe.must(t, "DELETE", "/Groups/"+created.ID, nil, http.StatusNoContent)
		}

		before = fe.state(t)
		rec = fe.serve("PUT", "/Groups/"+fe.group, body)
		fe.check(t, "PUT /Groups/{id}", rec, before, body)
		if rec.Code < 300 {
			fe.checkIndexed(t, "/Groups/"+fe.group, body)
		}
	})
}

// withIDs puts the resources' ids in place of the seeds' placeholders.
func (fe *fuzzEnv) withIDs(body []byte) []byte {
	body = bytes.ReplaceAll(body, []byte("{{user}}"), []byte(fe.user))
	body = bytes.ReplaceAll(body, []byte("{{user2}}"), []byte(fe.user2))
	return bytes.ReplaceAll(body, []byte("{{group}}"), []byte(fe.group))
}

// FuzzSCIMPatchBody sends each input as the body of PATCH on a user and on
// a group of two members: never a 5xx, and a refused PATCH changes
// nothing. "{{user}}", "{{user2}}" and "{{group}}" in the input become the
// resources' ids, so seeds taken from the golden requests reach real
// members.
func FuzzSCIMPatchBody(f *testing.F) {
	fe := newFuzzEnv(f)
	f.Add([]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"x@work.example"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		body = fe.withIDs(body)
		fe.reset(t)
		for _, target := range []string{"/Users/" + fe.user, "/Groups/" + fe.group} {
			before := fe.state(t)
			rec := fe.serve("PATCH", target, body)
			fe.check(t, "PATCH "+target, rec, before, body)
			if rec.Code < 300 {
				fe.checkIndexed(t, target, body)
			}
		}
	})
}
