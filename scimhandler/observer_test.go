package scimhandler_test

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/scimhandler"
)

// recordingObserver keeps what the handler reported.
type recordingObserver struct {
	mu             sync.Mutex
	requests       []string // "resource op status"
	rejections     []string // "reason limited"
	deprovisioned  []string // user ids
	committedTimes []time.Time
}

func (o *recordingObserver) Request(resource, op string, status int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests = append(o.requests, fmt.Sprintf("%s %s %d", resource, op, status))
}

func (o *recordingObserver) TokenRejected(reason string, limited bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rejections = append(o.rejections, fmt.Sprintf("%s %v", reason, limited))
}

func (o *recordingObserver) UserDeprovisioned(userID string, committed time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.deprovisioned = append(o.deprovisioned, userID)
	o.committedTimes = append(o.committedTimes, committed)
}

// take returns and clears what was recorded.
func (o *recordingObserver) take() (requests, rejections, deprovisioned []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	requests, rejections, deprovisioned = o.requests, o.rejections, o.deprovisioned
	o.requests, o.rejections, o.deprovisioned, o.committedTimes = nil, nil, nil, nil
	return
}

func TestObserverRequests(t *testing.T) {
	obs := &recordingObserver{}
	e := newEnv(t, func(c *scimhandler.Config) { c.Observer = obs })
	alice := e.createUser("alice", "active", "true")
	group := e.createGroup("Engineering", alice)
	obs.take()

	tests := []struct {
		method, path string
		body         any
		headers      []string
		want         string
	}{
		{"GET", "/Users", nil, nil, "Users list 200"},
		{"GET", "/Users/" + alice, nil, nil, "Users get 200"},
		{"GET", "/Users/nope", nil, nil, "Users get 404"},
		{"POST", "/Users/.search", map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"}}, nil, "Users search 200"},
		{"POST", "/.search", map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"}}, nil, "root search 200"},
		{"PATCH", "/Groups/" + group, map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{map[string]any{"op": "replace", "path": "displayName", "value": "Eng"}}}, nil, "Groups patch 204"},
		{"GET", "/ServiceProviderConfig", nil, nil, "ServiceProviderConfig list 200"},
		{"GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", nil, nil, "Schemas get 200"},
		{"POST", "/Bulk", "{}", nil, "Bulk create 501"},
		{"GET", "/Nowhere", nil, nil, "unknown list 404"},
		{"GET", "/Users", nil, []string{"Authorization", ""}, "Users list 401"},
		{"DELETE", "/Groups/" + group, nil, nil, "Groups delete 204"},
	}
	for _, tt := range tests {
		e.do(tt.method, tt.path, tt.body, tt.headers...)
		reqs, _, _ := obs.take()
		if len(reqs) != 1 || reqs[0] != tt.want {
			t.Errorf("%s %s: reported %q, want %q", tt.method, tt.path, reqs, tt.want)
		}
	}
}

func TestObserverTokenRejections(t *testing.T) {
	obs := &recordingObserver{}
	e := newEnv(t, func(c *scimhandler.Config) { c.Observer = obs })
	e.do("GET", "/Users", nil, "Authorization", "")
	e.do("GET", "/Users", nil, "Authorization", "Bearer wrong")
	// The failure bucket holds 10; the rest of a burst is answered 429.
	for range 10 {
		e.do("GET", "/Users", nil, "Authorization", "Bearer wrong")
	}
	_, rej, _ := obs.take()
	counts := map[string]int{}
	for _, r := range rej {
		counts[r]++
	}
	want := map[string]int{"missing false": 1, "invalid false": 9, "invalid true": 2}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("rejections %v, want %v", counts, want)
	}
}

func TestObserverDeprovisioning(t *testing.T) {
	obs := &recordingObserver{}
	e := newEnv(t, func(c *scimhandler.Config) { c.Observer = obs })
	patchActive := func(id string, active bool) {
		t.Helper()
		e.want(e.do("PATCH", "/Users/"+id, map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": active}}}), http.StatusOK)
	}
	put := func(id, userName string, active bool) {
		t.Helper()
		e.want(e.do("PUT", "/Users/"+id, map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
			"userName": userName, "active": active}), http.StatusOK)
	}
	a := e.createUser("a", "active", "true")
	b := e.createUser("b", "active", "true")
	c := e.createUser("c", "active", "true")
	d := e.createUser("d", "active", "false")
	obs.take()

	before := time.Now()
	patchActive(a, false)                                          // deactivation: reported
	patchActive(a, false)                                          // already inactive: not
	put(b, "b", false)                                             // deactivation by PUT: reported
	put(c, "c", true)                                              // no change of state: not
	e.want(e.do("DELETE", "/Users/"+c, nil), http.StatusNoContent) // active user deleted: reported
	e.want(e.do("DELETE", "/Users/"+d, nil), http.StatusNoContent) // inactive user deleted: not
	e.want(e.do("DELETE", "/Users/"+d, nil), http.StatusNotFound)  // nothing deleted: not
	patchActive(a, true)                                           // reactivation: not

	obs.mu.Lock()
	times := obs.committedTimes
	obs.mu.Unlock()
	for _, ct := range times {
		if ct.Before(before) || ct.After(time.Now()) {
			t.Errorf("commit time %v outside the test", ct)
		}
	}
	_, _, dep := obs.take()
	want := []string{a, b, c}
	sort.Strings(dep)
	sort.Strings(want)
	if strings.Join(dep, ",") != strings.Join(want, ",") {
		t.Errorf("deprovisioned %v, want %v", dep, want)
	}
}
