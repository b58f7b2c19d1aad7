package console

import (
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestSyncNow: a tenant pulled from a directory gets a "Sync now" button
// on its overview, with the last sync; the POST (CSRF-checked) starts a
// sync; a tenant that is not pulled shows none and refuses the POST.
func TestSyncNow(t *testing.T) {
	f := newFixture(t)
	var started atomic.Int32
	ended := time.Now().Add(-time.Hour)
	f.h.tenants["acme"].Pull = &Pull{
		Status: func() PullStatus {
			return PullStatus{Result: "ok", LastEnd: ended, Summary: "3 users created", NextRun: ended.Add(2 * time.Hour)}
		},
		SyncNow: func() { started.Add(1) },
	}
	w := f.do(request{method: "GET", path: "/portcullis/acme/", user: "root"})
	page := w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(page, `id="sync-now"`) || !strings.Contains(page, "3 users created") ||
		!strings.Contains(page, "Google Workspace directory") {
		t.Fatalf("overview of a pulled tenant: %d\n%s", w.Code, page)
	}
	cookie, token := f.session("root")
	post := func(path string, withToken bool) int {
		form := url.Values{}
		if withToken {
			form.Set("csrf", token)
		}
		return f.do(request{method: "POST", path: path, user: "root", cookie: cookie, form: form,
			header: map[string]string{"Origin": "http://gw.test"}}).Code
	}
	if code := post("/portcullis/acme/sync", false); code != http.StatusForbidden || started.Load() != 0 {
		t.Fatalf("sync without the CSRF token: %d, %d syncs started", code, started.Load())
	}
	if code := post("/portcullis/acme/sync", true); code != http.StatusSeeOther || started.Load() != 1 {
		t.Fatalf("sync now: %d, %d syncs started", code, started.Load())
	}
	f.h.tenants["acme"].Pull = nil
	if w := f.do(request{method: "GET", path: "/portcullis/acme/", user: "root"}); strings.Contains(w.Body.String(), `id="sync-now"`) {
		t.Fatal("a tenant that is not pulled shows Sync now")
	}
	if code := post("/portcullis/acme/sync", true); code != http.StatusNotFound {
		t.Fatalf("sync on a tenant that is not pulled: %d", code)
	}
}
