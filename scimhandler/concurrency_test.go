package scimhandler_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/storage"
)

// TestConcurrentMemberAdds: 50 PATCHes at once, each adding a different
// member to one group, leave all 50 members.
func TestConcurrentMemberAdds(t *testing.T) {
	e := newEnv(t)
	const n = 50
	users := make([]string, n)
	for i := range users {
		users[i] = e.createUser(fmt.Sprintf("member%02d", i))
	}
	gid := e.createGroup("Crowd")
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do("PATCH", "/Groups/"+gid, fmt.Sprintf(
				`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":%q}]}]}`, users[i]))
			statuses[i] = r.status
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusNoContent {
			t.Errorf("PATCH %d: status %d", i, s)
		}
	}
	got := e.members(gid)
	if len(got) != n {
		t.Fatalf("%d members, want %d", len(got), n)
	}
	for _, id := range users {
		if got[id] != storage.MemberUser {
			t.Errorf("member %s lost", id)
		}
	}
	if ev := e.events(storage.EventMemberAdded); len(ev) != n {
		t.Errorf("%d member_added events, want %d", len(ev), n)
	}
	// Every PATCH bumped the group's version exactly once.
	doc := e.want(e.do("GET", "/Groups/"+gid+"?excludedAttributes=members", nil), http.StatusOK)
	if got := doc.header.Get("ETag"); got != fmt.Sprintf(`W/"%d"`, n+1) {
		t.Errorf("ETag %s, want W/\"%d\"", got, n+1)
	}
}

// TestConcurrentCreateSameUserName: 50 POSTs of one userName give exactly
// one 201 and 49 409s.
func TestConcurrentCreateSameUserName(t *testing.T) {
	e := newEnv(t)
	const n = 50
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Case differs per request: uniqueness is case-insensitive.
			name := "Dup.User@example.com"
			if i%2 == 1 {
				name = "dup.user@EXAMPLE.com"
			}
			statuses[i] = e.do("POST", "/Users", map[string]any{"userName": name}).status
		}()
	}
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	if count[http.StatusCreated] != 1 || count[http.StatusConflict] != n-1 {
		t.Errorf("statuses %v, want one 201 and %d 409", count, n-1)
	}
	list := e.want(e.do("GET", "/Users", nil), http.StatusOK).obj(t)
	if num(list["totalResults"]) != 1 {
		t.Errorf("%v users stored", list["totalResults"])
	}
	if ev := e.events(storage.EventUserCreated); len(ev) != 1 {
		t.Errorf("%d user.created events", len(ev))
	}
}
