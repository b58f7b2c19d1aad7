package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/gatewaytest"
)

// Bounds of the kill test's load.
const (
	loadWorkers       = 4
	maxPostsPerWorker = 500              // hard cap per goroutine
	ackedBeforeKill   = 120              // kill once this many POSTs got 201
	loadTimeout       = 60 * time.Second // give up waiting for acks
)

// TestAcknowledgedWritesSurviveKill runs the contract Caddyfile in a real
// gateway process, loads it with concurrent SCIM POSTs, SIGKILLs it while
// requests are in flight, restarts it on the same store, and checks that
// every user whose POST got a 201 is there and that no record is half
// written: every listed user is complete and found by its userName index.
func TestAcknowledgedWritesSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts gateway processes")
	}
	dir := t.TempDir()
	cf, g := contractCaddyfile(t, filepath.Join(dir, "portcullis-data"))
	configFile := gatewaytest.WriteFile(t, dir, "Caddyfile", cf)
	users := g.scimBase("acme") + "/Users"

	gw := gatewaytest.StartProcess(t, configFile, g.admin)
	if err := gw.WaitHTTP(users); err != nil {
		t.Fatal(err)
	}
	token := issueToken(t, g, "acme")

	// Load: each worker POSTs distinct users until the gateway dies, its
	// cap is reached, or the time is up.
	var (
		mu      sync.Mutex
		acked   = map[string]string{} // id -> userName, for every 201
		nAcked  atomic.Int64
		cutOff  atomic.Int64 // workers stopped by the kill
		wg      sync.WaitGroup
		started = time.Now()
	)
	for w := range loadWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range maxPostsPerWorker {
				if time.Since(started) > loadTimeout {
					return
				}
				userName := fmt.Sprintf("load-%d-%d", w, i)
				a, err := tryCall("POST", users, token, newUser(userName))
				if err != nil {
					cutOff.Add(1) // the gateway is gone
					return
				}
				if a.status != http.StatusCreated {
					t.Errorf("POST %s: status %d: %s", userName, a.status, a.body)
					return
				}
				var u scimUser
				if err := json.Unmarshal(a.body, &u); err != nil || u.ID == "" {
					t.Errorf("POST %s: 201 without id: %s", userName, a.body)
					return
				}
				mu.Lock()
				acked[u.ID] = userName
				mu.Unlock()
				nAcked.Add(1)
			}
		}()
	}
	for nAcked.Load() < ackedBeforeKill && time.Since(started) < loadTimeout {
		time.Sleep(5 * time.Millisecond)
	}
	gw.Kill(t) // mid-load: the workers are still posting
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(acked) < ackedBeforeKill {
		t.Fatalf("only %d POSTs acknowledged within %v", len(acked), loadTimeout)
	}
	if cutOff.Load() == 0 {
		t.Fatal("the kill came after the load ended; it must hit requests in flight")
	}
	t.Logf("%d users acknowledged before SIGKILL", len(acked))

	gw = gatewaytest.StartProcess(t, configFile, g.admin)
	if err := gw.WaitHTTP(users); err != nil {
		t.Fatal(err)
	}

	// Every acknowledged user is there, whole.
	for id, userName := range acked {
		var u scimUser
		a := call(t, "GET", users+"/"+id, token, nil)
		expect(t, a, http.StatusOK, "GET acknowledged user "+userName)
		a.json(t, &u)
		if u.ID != id || u.UserName != userName || !u.Active || len(u.Emails) != 1 || u.Emails[0].Value != userName+"@example.com" {
			t.Fatalf("user %s came back as %+v", userName, u)
		}
	}

	// Every stored user (acknowledged or caught in flight) is complete and
	// consistent with the userName index.
	listed := map[string]bool{}
	for start, page := 1, 0; ; page++ {
		if page > 100 {
			t.Fatal("listing did not end")
		}
		var list listResponse
		a := call(t, "GET", fmt.Sprintf("%s?startIndex=%d&count=200", users, start), token, nil)
		expect(t, a, http.StatusOK, "list users")
		a.json(t, &list)
		for _, u := range list.Resources {
			if u.ID == "" || u.UserName == "" || u.Meta.Location != users+"/"+u.ID || len(u.Emails) != 1 {
				t.Fatalf("incomplete user in listing: %+v", u)
			}
			if listed[u.ID] {
				t.Fatalf("user %s listed twice", u.ID)
			}
			listed[u.ID] = true
			var found listResponse
			filter := url.QueryEscape(fmt.Sprintf("userName eq %q", u.UserName))
			b := call(t, "GET", users+"?filter="+filter, token, nil)
			expect(t, b, http.StatusOK, "filter by userName")
			b.json(t, &found)
			if found.TotalResults != 1 || len(found.Resources) != 1 || found.Resources[0].ID != u.ID {
				t.Fatalf("userName %s: index finds %s", u.UserName, b.body)
			}
		}
		start += len(list.Resources)
		if len(list.Resources) == 0 || start > list.TotalResults {
			if len(listed) != list.TotalResults {
				t.Fatalf("listed %d users, totalResults %d", len(listed), list.TotalResults)
			}
			break
		}
	}
	for id, userName := range acked {
		if !listed[id] {
			t.Fatalf("acknowledged user %s (%s) missing from the listing", userName, id)
		}
	}
	t.Logf("%d users stored after restart (%d acknowledged)", len(listed), len(acked))
}
