package scimhandler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// snapshot is everything the tenant holds, to show that refused requests
// change nothing.
func (e *testEnv) snapshot() string {
	e.t.Helper()
	var b strings.Builder
	err := e.badger.View(context.Background(), tenant, func(tx storage.ReadTx) error {
		if err := tx.ScanUsers("", func(u *storage.User) (bool, error) {
			j, _ := json.Marshal(u)
			b.Write(j)
			return true, nil
		}); err != nil {
			return err
		}
		return tx.ScanGroups("", func(g *storage.Group) (bool, error) {
			j, _ := json.Marshal(g)
			b.Write(j)
			return true, tx.Members(g.ID, func(m storage.Member) (bool, error) {
				fmt.Fprintf(&b, "[%s %s]", m.ID, m.Type)
				return true, nil
			})
		})
	})
	if err != nil {
		e.t.Fatal(err)
	}
	fmt.Fprintf(&b, "events=%d", len(e.events()))
	return b.String()
}

// TestNoClientInputGets5xx throws malformed JSON, wrong types, huge and
// deep filters and bad paths at every endpoint: every answer is a 4xx
// SCIM error (or a 2xx for lenient reads) and the store is unchanged.
func TestNoClientInputGets5xx(t *testing.T) {
	e := newEnv(t)
	alice := e.createUser("alice", "emails", `[{"value":"a@x.example","type":"work"}]`)
	e.createUser("bob")
	gid := e.createGroup("Admins", alice)
	before := e.snapshot()

	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	deepNot := func(n int) string { return strings.Repeat("not(", n) + `title pr` + strings.Repeat(")", n) }
	long := strings.Repeat("x", 5000)
	badBodies := []string{
		``, ` `, `null`, `0`, `"str"`, `[]`, `[{}]`, `{`, `{"userName":}`, `{"userName":"a",}`,
		`{"userName":"a"}{"userName":"b"}`, "\xff\xfe{}", `{"userName":"a\u0000"` + "\x00}", deep,
		`{"userName":` + deep + `}`,
	}
	wrongTypes := []string{
		`{"userName":true}`, `{"userName":{}}`, `{"userName":[]}`, `{"userName":null}`, `{"userName":""}`,
		`{"userName":"  "}`,
		`{"userName":"v","active":"maybe"}`, `{"userName":"v","active":5}`, `{"userName":"v","active":{}}`,
		`{"userName":"v","name":5}`, `{"userName":"v","name":[true]}`, `{"userName":"v","name":{"givenName":{}}}`,
		`{"userName":"v","emails":[5]}`, `{"userName":"v","emails":[{"value":{}}]}`, `{"userName":"v","emails":[{"primary":"sometimes"}]}`,
		`{"userName":"v","schemas":5}`, `{"userName":"v","schemas":[5]}`, `{"userName":"v","password":5}`,
		`{"userName":"v","password":{"p":"x"}}`,
		`{"userName":"v","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":"x"}`,
		`{"userName":"v","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":5}}`,
		`{"userName":"v","urn:ietf:params:scim:schemas:core:2.0:User":7}`,
		`{"userName":"` + strings.Repeat("u", 2000) + `"}`,
		`{"userName":"v","externalId":"` + strings.Repeat("e", 2000) + `"}`,
		`{"userName":"BOB"}`, // taken
		`{"userName":"v","members":[]}`, `{"userName":"v","displayName":5}`, `{"userName":"v","title":7}`,
		`{"userName":"v","urn:ietf:params:scim:schemas:core:2.0:Group":{"displayName":"x"}}`,
		`{"displayName":5}`, `{"displayName":""}`, `{"displayName":"g","members":[{"value":"nobody"}]}`,
		`{"displayName":"g","members":[{"value":5}]}`, `{"displayName":"g","members":[{}]}`, `{"displayName":"g","members":5}`,
		`{"displayName":"g","members":[{"value":"` + strings.Repeat("m", 300) + `"}]}`,
		`{"displayName":"g","active":true}`, `{"displayName":"g","password":"x"}`,
		`{"displayName":"g","urn:ietf:params:scim:api:messages:2.0:PatchOp":{}}`,
	}
	badOps := []string{
		`{}`, `{"Operations":null}`, `{"Operations":[]}`, `{"Operations":{}}`, `{"Operations":[null]}`, `{"Operations":[5]}`,
		`{"Operations":[{"op":null}]}`, `{"Operations":[{"op":"copy","path":"title","value":"x"}]}`,
		`{"Operations":[{"op":"add","path":5,"value":"x"}]}`, `{"Operations":[{"op":"add","path":"title"}]}`,
		`{"Operations":[{"op":"remove"}]}`, `{"Operations":[{"op":"replace","value":"x"}]}`, `{"Operations":[{"op":"add","value":[1]}]}`,
		`{"Operations":[{"op":"add","path":"emails[type eq \"work\"","value":"x"}]}`,
		`{"Operations":[{"op":"add","path":"emails[` + deepNot(40) + `]","value":"x"}]}`,
		`{"Operations":[{"op":"add","path":"` + long + `","value":"x"}]}`,
		`{"Operations":[{"op":"add","path":"title.x.y","value":"x"}]}`,
		`{"Operations":[{"op":"add","path":"userName.x","value":"x"}]}`,
		`{"Operations":[{"op":"add","path":"urn:ietf:params:scim:schemas:core:2.0:User","value":"x"}]}`,
		`{"Operations":[{"op":"add","path":"urn:ietf:params:scim:schemas:core:2.0:Group","value":"x"}]}`,
		`{"Operations":[{"op":"add","path":"meta","value":{}}]}`, `{"Operations":[{"op":"replace","path":"id","value":"x"}]}`,
		`{"Operations":[{"op":"add","path":"groups","value":[{"value":"x"}]}]}`,
		`{"Operations":[{"op":"add","path":"","value":5}]}`,
		`{"Operations":[{"op":"replace","path":"active","value":{"x":1}}]}`,
		`{"Operations":[{"op":"replace","path":"emails[type eq \"work\"].value","value":{"a":1}}]}`,
		`{"Operations":[{"op":"replace","path":"emails[value co \"nothing\"].type","value":"x"}]}`,
		`{"Operations":[{"op":"add","path":"emails","value":[{"value":5}]}]}`,
		`{"Operations":[{"op":"replace","path":"userName","value":""}]}`, `{"Operations":[{"op":"remove","path":"userName"}]}`,
		`{"Operations":[{"op":"replace","path":"displayName","value":5}]}`,
		`{"Operations":[{"op":"add","path":"members","value":[{"value":"nobody"}]}]}`,
		`{"Operations":[{"op":"add","path":"members","value":[{"display":"no value"}]}]}`,
		`{"Operations":[{"op":"add","path":"members","value":[5]}]}`,
		`{"Operations":[{"op":"add","path":"members.value","value":"x"}]}`,
		`{"Operations":[{"op":"replace","path":"members[value eq \"x\"].display","value":"x"}]}`,
		`{"Operations":[{"op":"replace","path":"password","value":5}]}`, `{"Operations":[{"op":"replace","value":{"password":5}}]}`,
		`{"Operations":[{"op":"add","path":"title","value":"ok"},{"op":"add","path":"bad[","value":"x"}]}`,
		`{"Operations":[{"op":"add","path":"members","value":[{"value":"` + alice + `"}]},{"op":"add","path":"members","value":[{"value":"nobody"}]}]}`,
		`{"Operations":[{"op":"replace","value":{"name.givenName":"x","userName":""}}]}`,
		`{"Operations":[{"op":"replace","value":{"emails[type":"x"}}]}`,
	}
	groupOnlyOps := []string{
		`{"Operations":[{"op":"remove","path":"displayName"}]}`,
		`{"Operations":[{"op":"add","path":"members","value":[{"value":"` + gid + `"}]}]}`,
	}
	badFilters := []string{
		``, `(`, `)`, `[`, `]`, `not`, `and`, `userName`, `userName eq`, `userName eq "a`, `userName eq "\u00e"`,
		`userName eq "\x"`, "userName eq \"\x01\"", "userName eq \"a\x00\"", `userName eq 1e999`, `userName eq -1e999`,
		strings.Repeat("(", 40) + `title pr` + strings.Repeat(")", 40), deepNot(33), `title eq "` + long + `"`,
		strings.Repeat(`title pr and `, 400) + `title pr`,
		`emails[type eq "w"].value.x eq "1"`, `emails[emails[type eq "x"]]`, `userName eq "x" and`, `userName[value eq "x"]`,
		`meta.lastModified gt "notadate"`, `active gt 1`, `ü eq 1`, `name eq "x"`, `].value eq "x"`, `[a eq "1"].b eq "1"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User eq "x"`, `emails[type eq "work" and value co "x" and primary eq true]`,
		`emails[type eq "work"].value`, `emails[type eq "work"]].value eq "x"`, `userName eq "x" or not`, `userName pr pr`,
	}
	type req struct{ method, path, body string }
	var reqs []req
	writes := []string{"POST /Users", "PUT /Users/" + alice, "POST /Groups", "PUT /Groups/" + gid,
		"PATCH /Users/" + alice, "PATCH /Groups/" + gid}
	for _, w := range writes {
		m, p, _ := strings.Cut(w, " ")
		for _, b := range badBodies {
			reqs = append(reqs, req{m, p, b})
		}
		if m == "PATCH" {
			for _, b := range badOps {
				reqs = append(reqs, req{m, p, b})
			}
			if strings.Contains(p, "Groups") {
				for _, b := range groupOnlyOps {
					reqs = append(reqs, req{m, p, b})
				}
			}
			continue
		}
		for _, b := range wrongTypes {
			if strings.Contains(p, "Groups") == strings.Contains(b, `{"displayName"`) {
				reqs = append(reqs, req{m, p, b})
			}
		}
	}
	for _, f := range badFilters {
		for _, p := range []string{"/Users", "/Groups"} {
			reqs = append(reqs, req{"GET", p + "?filter=" + q(f), ""})
		}
		body, _ := json.Marshal(map[string]any{"filter": f})
		for _, p := range []string{"/Users/.search", "/Groups/.search", "/.search"} {
			reqs = append(reqs, req{"POST", p, string(body)})
		}
	}
	for _, bq := range []string{"sortBy=" + q("emails["), "sortBy=" + long, "sortOrder=" + long, "attributes=" + q("a..b"),
		"attributes=" + q(strings.Repeat("a,", 3000)), "excludedAttributes=" + q("emails[type"), "attributes=urn:",
		"sortBy=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"} {
		reqs = append(reqs, req{"GET", "/Users?" + bq, ""}, req{"GET", "/Users/" + alice + "?" + bq, ""},
			req{"GET", "/Groups/" + gid + "?" + bq, ""})
	}
	for _, b := range []string{`{"filter":5}`, `{"attributes":5}`, `{"attributes":[5]}`, `{"sortOrder":true}`,
		`{"sortBy":"a[","filter":"title pr"}`, `{"excludedAttributes":{"a":1}}`} {
		reqs = append(reqs, req{"POST", "/Users/.search", b}, req{"POST", "/.search", b})
	}
	for _, p := range []string{"/Users/%00", "/Users/" + strings.Repeat("i", 5000), "/Schemas/" + long, "/ResourceTypes/%ff",
		"/Users/.search/x", "/Groups/" + gid + "/members"} {
		reqs = append(reqs, req{"GET", p, ""}, req{"DELETE", p, ""}, req{"PATCH", p, `{"Operations":[{"op":"add","path":"title","value":"x"}]}`})
	}

	for _, r := range reqs {
		res := e.do(r.method, r.path, r.body)
		if res.status >= 500 {
			t.Errorf("%s %.120s %.200q: status %d: %s", r.method, r.path, r.body, res.status, res.body)
			continue
		}
		if r.method != "GET" && res.status < 400 && !strings.Contains(r.path, "search") {
			t.Errorf("%s %.120s %.200q: accepted with %d: %s", r.method, r.path, r.body, res.status, res.body)
		}
		if res.status >= 400 && res.header.Get("Content-Type") != "application/scim+json" {
			t.Errorf("%s %.120s: error without a SCIM body", r.method, r.path)
		}
	}
	// Stale preconditions are refused too.
	for _, m := range []string{"PUT", "PATCH", "DELETE"} {
		body := `{"userName":"alice2"}`
		if m == "PATCH" {
			body = `{"Operations":[{"op":"add","path":"title","value":"x"}]}`
		}
		e.want(e.do(m, "/Users/"+alice, body, "If-Match", `W/"999"`), http.StatusPreconditionFailed)
	}
	if after := e.snapshot(); after != before {
		t.Errorf("refused requests changed the store:\nbefore %s\nafter  %s", before, after)
	}
	t.Logf("%d hostile requests, none answered 5xx, store unchanged", len(reqs))
	sort.Strings(nil)
}
