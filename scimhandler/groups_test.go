package scimhandler_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

func TestGroupLifecycle(t *testing.T) {
	e := newEnv(t)
	alice, bob, carol := e.createUser("alice", "displayName", "Alice A"), e.createUser("bob"), e.createUser("carol")
	r := e.want(e.do("POST", "/Groups", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Engineering", "externalId": "eng-1",
		"members": []any{map[string]any{"value": alice, "display": "ignored"}, map[string]any{"value": bob}},
	}), http.StatusCreated)
	doc := r.obj(t)
	gid := str(doc["id"])
	if r.header.Get("Location") != e.base+"/Groups/"+gid || str(path(doc, "meta", "location")) != e.base+"/Groups/"+gid {
		t.Errorf("Location %q meta %v", r.header.Get("Location"), doc["meta"])
	}
	members := map[string]map[string]any{}
	for _, m := range doc["members"].([]any) {
		members[str(m.(map[string]any)["value"])] = m.(map[string]any)
	}
	if len(members) != 2 || members[alice]["display"] != "Alice A" || members[bob]["display"] != "bob" ||
		members[alice]["$ref"] != e.base+"/Users/"+alice || members[alice]["type"] != "User" {
		t.Errorf("members %v", doc["members"])
	}

	// Unknown members are refused and nothing is created.
	bad := e.want(e.do("POST", "/Groups", `{"displayName":"X","members":[{"value":"nobody"}]}`), http.StatusBadRequest).obj(t)
	if bad["scimType"] != "invalidValue" {
		t.Errorf("%v", bad)
	}
	list := e.want(e.do("GET", "/Groups", nil), http.StatusOK).obj(t)
	if num(list["totalResults"]) != 1 {
		t.Errorf("a refused POST created a group: %v", list)
	}

	// excludedAttributes=members (Entra) and attributes.
	ex := e.want(e.do("GET", "/Groups/"+gid+"?excludedAttributes=members", nil), http.StatusOK).obj(t)
	if ex["members"] != nil || ex["displayName"] != "Engineering" {
		t.Errorf("excludedAttributes=members: %v", ex)
	}
	at := e.want(e.do("GET", "/Groups/"+gid+"?attributes=displayName", nil), http.StatusOK).obj(t)
	if len(at) != 3 || at["id"] != gid || at["schemas"] == nil {
		t.Errorf("attributes=displayName: %v", at)
	}

	// PUT replaces the members with the given ones.
	put := e.want(e.do("PUT", "/Groups/"+gid, map[string]any{"displayName": "Eng",
		"members": []any{map[string]any{"value": carol}, map[string]any{"value": bob}}}), http.StatusOK).obj(t)
	if put["displayName"] != "Eng" || put["externalId"] != nil {
		t.Errorf("PUT answer %v", put)
	}
	if m := e.members(gid); len(m) != 2 || m[carol] == "" || m[bob] == "" {
		t.Errorf("members after PUT %v", m)
	}
	if ev := e.events(storage.EventGroupUpdated); len(ev) != 1 || ev[0].Before != `displayName="Engineering" externalId="eng-1"` ||
		ev[0].After != `displayName="Eng" externalId=""` {
		t.Errorf("group.updated %+v", ev)
	}
	if ev := e.events(storage.EventMemberRemoved); len(ev) != 1 || ev[0].Before != "member="+alice || ev[0].ResourceID != gid {
		t.Errorf("group.member_removed %+v", ev)
	}

	// A nested group is a member of type Group.
	sub := e.createGroup("Sub")
	e.want(e.do("PATCH", "/Groups/"+gid, `{"Operations":[{"op":"add","path":"members","value":[{"value":"`+sub+`"}]}]}`), http.StatusNoContent)
	if m := e.members(gid); m[sub] != storage.MemberGroup {
		t.Errorf("nested group %v", m)
	}
	e.want(e.do("PATCH", "/Groups/"+gid, `{"Operations":[{"op":"add","path":"members","value":[{"value":"`+gid+`"}]}]}`), http.StatusBadRequest)

	// PATCH answers 204 with the ETag, or 200 with the group when asked.
	p := e.want(e.do("PATCH", "/Groups/"+gid+"?excludedAttributes=members",
		`{"Operations":[{"op":"replace","path":"displayName","value":"Engineering"}]}`), http.StatusOK)
	if p.obj(t)["displayName"] != "Engineering" || p.header.Get("ETag") == "" {
		t.Errorf("PATCH 200: %s", p.body)
	}

	// DELETE removes the group and its memberships (also as a member).
	e.want(e.do("DELETE", "/Groups/"+sub, nil), http.StatusNoContent)
	if m := e.members(gid); m[sub] != "" {
		t.Error("deleted group is still a member")
	}
	e.want(e.do("DELETE", "/Groups/"+gid, nil), http.StatusNoContent)
	e.want(e.do("GET", "/Groups/"+gid, nil), http.StatusNotFound)
	doc = e.want(e.do("GET", "/Users/"+carol, nil), http.StatusOK).obj(t)
	if doc["groups"] != nil {
		t.Errorf("user still lists a deleted group: %v", doc["groups"])
	}

	var types []string
	for _, ev := range e.events() {
		if strings.HasPrefix(ev.Type, "group.") {
			types = append(types, ev.Type)
		}
	}
	want := "group.deleted,group.member_removed,group.deleted,group.updated,group.member_added,group.created," +
		"group.member_removed,group.member_added,group.updated,group.member_added,group.member_added,group.created"
	if got := strings.Join(types, ","); got != want {
		t.Errorf("events\n got  %s\n want %s", got, want)
	}
}

func TestGroupPatchMembers(t *testing.T) {
	e := newEnv(t)
	u := make([]string, 5)
	for i := range u {
		u[i] = e.createUser(fmt.Sprintf("user%d", i))
	}
	gid := e.createGroup("G", u[0], u[1], u[2])
	tests := []struct {
		name string
		body string
		want []int // members after, as indexes into u
	}{
		{"Entra Add", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[{"$ref":null,"value":"U3"}]}]}`, []int{0, 1, 2, 3}},
		{"Entra Remove with value removes only those", `{"Operations":[{"op":"Remove","path":"members","value":[{"value":"U0"}]}]}`, []int{1, 2, 3}},
		{"JumpCloud re-adds a present member", `{"Operations":[{"op":"add","path":"members","value":[{"value":"U1"}]}]}`, []int{1, 2, 3}},
		{"Okta remove by filter and add in one PATCH", `{"Operations":[{"op":"remove","path":"members[value eq \"U2\"]"},{"op":"add","path":"members","value":[{"value":"U4","display":"user4"}]}]}`, []int{1, 3, 4}},
		{"Okta replace members", `{"Operations":[{"op":"replace","path":"members","value":[{"value":"U0"},{"value":"U1"}]}]}`, []int{0, 1}},
		{"no-path add of members", `{"Operations":[{"op":"add","value":{"members":[{"value":"U2"}]}}]}`, []int{0, 1, 2}},
		{"remove by a filter on type", `{"Operations":[{"op":"remove","path":"members[type eq \"User\" and value eq \"U0\"]"}]}`, []int{1, 2}},
		{"remove a member that is not there", `{"Operations":[{"op":"remove","path":"members[value eq \"U4\"]"}]}`, []int{1, 2}},
		{"Okta replace members with nothing", `{"Operations":[{"op":"replace","path":"members","value":[]}]}`, nil},
		{"add back several", `{"Operations":[{"op":"add","path":"members","value":[{"value":"U0"},{"value":"U3"}]}]}`, []int{0, 3}},
		{"remove all", `{"Operations":[{"op":"remove","path":"members"}]}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body
			for i, id := range u {
				body = strings.ReplaceAll(body, fmt.Sprintf("U%d", i), id)
			}
			r := e.do("PATCH", "/Groups/"+gid, body)
			if r.status != http.StatusNoContent {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			got := e.members(gid)
			if len(got) != len(tt.want) {
				t.Fatalf("members %v, want %v", got, tt.want)
			}
			for _, i := range tt.want {
				if got[u[i]] != storage.MemberUser {
					t.Errorf("user%d missing from %v", i, got)
				}
			}
		})
	}
	// The JumpCloud case changed nothing: no member event, no version bump.
	r := e.want(e.do("PATCH", "/Groups/"+gid, `{"Operations":[{"op":"add","path":"members","value":[{"value":"`+u[0]+`"}]}]}`), http.StatusNoContent)
	r2 := e.want(e.do("PATCH", "/Groups/"+gid, `{"Operations":[{"op":"add","path":"members","value":[{"value":"`+u[0]+`"}]}]}`), http.StatusNoContent)
	if r.header.Get("ETag") != r2.header.Get("ETag") {
		t.Errorf("re-adding a member changed the version: %s -> %s", r.header.Get("ETag"), r2.header.Get("ETag"))
	}
}

// TestGroupPatchDoesNotRewriteMembers: adding one member to a group of
// 10,000 writes one membership, not the list.
func TestGroupPatchDoesNotRewriteMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 10,000 users")
	}
	e := newEnv(t)
	ctx := context.Background()
	gid := e.createGroup("Big")
	const n = 10000
	now := time.Now().UTC()
	for start := 0; start < n; start += 1000 {
		err := e.badger.Update(ctx, tenant, func(tx storage.Tx) error {
			for i := start; i < start+1000; i++ {
				id := fmt.Sprintf("u-%05d", i)
				if err := tx.PutUser(&storage.User{ID: id, UserName: id, Active: true, Source: storage.SourceSCIM,
					Created: now, Modified: now}); err != nil {
					return err
				}
				if _, err := tx.AddMember(gid, storage.Member{ID: id, Type: storage.MemberUser}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	newcomer := e.createUser("newcomer")
	e.store.reset()
	e.want(e.do("PATCH", "/Groups/"+gid, `{"Operations":[{"op":"Add","path":"members","value":[{"value":"`+newcomer+`"}]}]}`), http.StatusNoContent)
	c := e.store.reset()
	if c["AddMember"] != 1 || c["RemoveMember"] != 0 || c["PutGroup"] != 1 || c["Members"] != 0 {
		t.Errorf("calls for one added member: %v", c)
	}
	e.want(e.do("PATCH", "/Groups/"+gid, `{"Operations":[{"op":"remove","path":"members[value eq \"`+newcomer+`\"]"}]}`), http.StatusNoContent)
	c = e.store.reset()
	if c["AddMember"] != 0 || c["RemoveMember"] != 1 || c["PutGroup"] != 1 || c["Members"] != 0 {
		t.Errorf("calls for one removed member: %v", c)
	}
	if got := len(e.members(gid)); got != n {
		t.Errorf("members %d, want %d", got, n)
	}
	// Entra reads the group without members.
	e.store.reset()
	e.want(e.do("GET", "/Groups?excludedAttributes=members&filter="+q(`displayName eq "big"`), nil), http.StatusOK)
	if c := e.store.reset(); c["Members"] != 0 || c["ScanGroups"] != 0 {
		t.Errorf("GET with excludedAttributes=members read members or scanned: %v", c)
	}
}

func TestAnswersKeepAmpersands(t *testing.T) {
	e := newEnv(t)
	r := e.want(e.do("POST", "/Groups", `{"displayName":"R&D <core>"}`), http.StatusCreated)
	if !strings.Contains(string(r.body), `"displayName":"R&D <core>"`) {
		t.Errorf("body %s", r.body)
	}
	list := e.want(e.do("GET", "/Groups?filter="+q(`displayName eq "r&d <CORE>"`), nil), http.StatusOK)
	if !strings.Contains(string(list.body), `"totalResults":1`) {
		t.Errorf("list %s", list.body)
	}
}

// Groups answer conditional requests like users: 304 for a current
// If-None-Match, 412 for a stale If-Match on every kind of write, and a
// refused write changes nothing.
func TestGroupConditionalRequests(t *testing.T) {
	e := newEnv(t)
	r := e.want(e.do("POST", "/Groups", `{"displayName":"Ops"}`), http.StatusCreated)
	gid := str(r.obj(t)["id"])
	etag := r.header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on create")
	}
	nm := e.want(e.do("GET", "/Groups/"+gid, nil, "If-None-Match", etag), http.StatusNotModified)
	if len(nm.body) != 0 || nm.header.Get("ETag") != etag {
		t.Errorf("304 with body %q etag %q", nm.body, nm.header.Get("ETag"))
	}
	e.want(e.do("GET", "/Groups/"+gid, nil, "If-None-Match", `W/"99"`), http.StatusOK)
	stale := `W/"99"`
	e.want(e.do("PUT", "/Groups/"+gid, `{"displayName":"Other"}`, "If-Match", stale), http.StatusPreconditionFailed)
	e.want(e.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"Other"}]}`, "If-Match", stale), http.StatusPreconditionFailed)
	e.want(e.do("DELETE", "/Groups/"+gid, nil, "If-Match", stale), http.StatusPreconditionFailed)
	if got := str(e.want(e.do("GET", "/Groups/"+gid, nil), http.StatusOK).obj(t)["displayName"]); got != "Ops" {
		t.Errorf("displayName %q after refused writes", got)
	}
	e.want(e.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"Ops2"}]}`, "If-Match", etag), http.StatusNoContent)
	e.want(e.do("DELETE", "/Groups/"+gid, nil, "If-Match", etag), http.StatusPreconditionFailed)
}
