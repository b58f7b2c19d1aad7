package sso

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/devidp"
	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
)

var anonymousRequests = flag.Int("sso.anonymous", 10000,
	"sign-in starts, and garbage callbacks, that TestAnonymousTrafficDoesNoDurableWork sends")

// diskUsage is the space the files under dir take on disk (allocated
// blocks, so that writes into Badger's preallocated files count).
func diskUsage(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		} else {
			total += info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// TestAnonymousTrafficDoesNoDurableWork sends sign-in starts and garbage
// callbacks and SAML posts, from a handful of addresses, to an OIDC and a
// SAML tenant on one real Badger store: the store must not grow (beyond
// the few aggregated signin.refused events) and no tenant's Generation may
// move, so no identity cache is emptied.
func TestAnonymousTrafficDoesNoDurableWork(t *testing.T) {
	n := *anonymousRequests
	dir := t.TempDir()
	store, err := badgerstore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	op, err := devidp.Start(devidp.Config{Users: oidcUsers})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	const gw = "http://gw.example"
	op.AddClient(testClientID, testClientSecret, []string{gw + "/sso" + PathOIDCCallback}, nil)
	idp := startSAMLIdPWithUsers(t)

	ctx := context.Background()
	oidcSvc, err := New(ctx, TenantConfig{Tenant: "acme", OIDC: &OIDCConfig{Issuer: op.Issuer, ClientID: testClientID, ClientSecret: testClientSecret}}, store, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer oidcSvc.Close()
	samlSvc, err := New(ctx, TenantConfig{Tenant: "globex", SAML: &SAMLConfig{IDPMetadataURL: idp.metadataURL(), EntityID: gw + "/sso/saml/metadata"}}, store, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer samlSvc.Close()
	external := func(*http.Request) string { return gw }
	oidcH, samlH := oidcSvc.Handler("/sso", external), samlSvc.Handler("/sso", external)

	// Let start-up writes (keys) settle before measuring.
	time.Sleep(100 * time.Millisecond)
	before := diskUsage(t, dir)
	genOIDC, genSAML := store.Generation("acme"), store.Generation("globex")

	serve := func(h http.Handler, r *http.Request, i int) *httptest.ResponseRecorder {
		r.RemoteAddr = fmt.Sprintf("203.0.113.%d:%d", i%8, 1024+i%5000)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	// A real flow of each tenant, for the callbacks that get past the
	// flow check and fail later (a bad code, a bad SAMLResponse).
	startFlow := func(h http.Handler, i int) (state string, cookie *http.Cookie) {
		w := serve(h, httptest.NewRequest(http.MethodGet, gw+"/sso/login?rd=/x", nil), i)
		if w.Code != http.StatusFound && w.Code != http.StatusOK {
			t.Fatalf("start: %d %s", w.Code, w.Body)
		}
		cookie = w.Result().Cookies()[0]
		loc, _ := url.Parse(w.Header().Get("Location"))
		state = loc.Query().Get("state")
		if state == "" {
			state = loc.Query().Get("RelayState")
		}
		return state, cookie
	}

	begin := time.Now()
	statuses := map[int]int{}
	for i := 0; i < n; i++ {
		h := oidcH
		if i%2 == 1 {
			h = samlH
		}
		w := serve(h, httptest.NewRequest(http.MethodGet, gw+"/sso/login?rd=/page/"+fmt.Sprint(i), nil), i)
		if w.Code != http.StatusFound {
			t.Fatalf("start %d: %d", i, w.Code)
		}
	}
	startsTook := time.Since(begin)
	begin = time.Now()
	for i := 0; i < n; i++ {
		var r *http.Request
		var h http.Handler
		state := newRandom()
		if i%2 == 0 {
			h = oidcH
			q := url.Values{"code": {"garbage-" + fmt.Sprint(i)}}
			if i%6 != 0 {
				q.Set("state", state)
			}
			r = httptest.NewRequest(http.MethodGet, gw+"/sso"+PathOIDCCallback+"?"+q.Encode(), nil)
			switch {
			case i%100 == 2: // a real flow, a garbage code: the provider refuses it
				state, c := startFlow(oidcH, i)
				q.Set("state", state)
				r = httptest.NewRequest(http.MethodGet, gw+"/sso"+PathOIDCCallback+"?"+q.Encode(), nil)
				r.AddCookie(c)
			case i%6 == 4: // the right cookie name, a forged value
				r.AddCookie(&http.Cookie{Name: oidcSvc.flowCookieName(r, state), Value: base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("x", 80)))})
			}
		} else {
			h = samlH
			form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString([]byte("<Response>garbage " + fmt.Sprint(i) + "</Response>"))}}
			if i%6 != 1 {
				form.Set("RelayState", state)
			}
			var cookie *http.Cookie
			switch {
			case i%100 == 3: // a real flow, a garbage response
				var rs string
				rs, cookie = startFlow(samlH, i)
				form.Set("RelayState", rs)
			case i%6 == 5:
				form.Del("SAMLResponse")
			}
			r = httptest.NewRequest(http.MethodPost, gw+"/sso"+PathSAMLACS, strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if cookie != nil {
				r.AddCookie(cookie)
			}
		}
		w := serve(h, r, i)
		statuses[w.Code]++
		if w.Code != http.StatusBadRequest && w.Code != http.StatusTooManyRequests {
			t.Fatalf("garbage callback %d answered %d: %s", i, w.Code, w.Body)
		}
	}
	callbacksTook := time.Since(begin)

	// Badger writes its log asynchronously after a sync commit returns
	// nothing more; give a moment anyway so a late write is counted.
	time.Sleep(100 * time.Millisecond)
	grown := diskUsage(t, dir) - before
	t.Logf("%d starts in %s (%s each), %d garbage callbacks in %s (%s each), answers %v; store grew by %d bytes",
		n, startsTook.Round(time.Millisecond), (startsTook / time.Duration(n)).Round(time.Microsecond),
		n, callbacksTook.Round(time.Millisecond), (callbacksTook / time.Duration(n)).Round(time.Microsecond), statuses, grown)
	if grown >= 64<<10 {
		t.Errorf("the store grew by %d bytes", grown)
	}
	if g := store.Generation("acme"); g != genOIDC {
		t.Errorf("acme's generation moved from %d to %d", genOIDC, g)
	}
	if g := store.Generation("globex"); g != genSAML {
		t.Errorf("globex's generation moved from %d to %d", genSAML, g)
	}
	var refusals []storage.Event
	for _, tenant := range []string{"acme", "globex"} {
		err := store.View(ctx, tenant, func(tx storage.ReadTx) error {
			evs, err := tx.Events(storage.EventQuery{Types: []string{storage.EventSignInRefused}, Limit: 1000})
			refusals = append(refusals, evs...)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// One event per address and tenant in the window.
	if len(refusals) > 16 {
		t.Errorf("%d signin.refused events for %d refusals", len(refusals), n)
	}
	for _, e := range refusals[:min(2, len(refusals))] {
		t.Logf("event: %s", e.Reason)
	}

	// The measure sees writes: 200 records of 512 bytes in one commit
	// make the store grow by more than the limit.
	before = diskUsage(t, dir)
	err = store.Update(ctx, "acme", func(tx storage.Tx) error {
		for i := 0; i < 200; i++ {
			if err := tx.PutRecord("test.control", fmt.Sprint(i), []byte(strings.Repeat("r", 512)), time.Hour); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if grown := diskUsage(t, dir) - before; grown < 64<<10 {
		t.Errorf("control: 100 KiB of records grew the store by only %d bytes; the measure is blind", grown)
	}
}
