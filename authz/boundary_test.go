package authz

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/storage"
)

func TestFilterUpgrade(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		proto      int
		header     map[string][]string
		want       upgradeVerdict
		wantHeader map[string][]string // after; nil: unchanged
	}{
		{"no upgrade", "GET", 1, map[string][]string{"Connection": {"keep-alive"}}, upgradeNone, nil},
		{"websocket passes", "GET", 1, map[string][]string{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}, upgradeWebSocket, nil},
		{"websocket any case", "GET", 1, map[string][]string{"Upgrade": {"WebSocket"}, "Connection": {"upgrade"}}, upgradeWebSocket, nil},
		{"h2c stripped", "GET", 1,
			map[string][]string{"Upgrade": {"h2c"}, "Http2-Settings": {"AAMAAABkAAQAAP__"}, "Connection": {"Upgrade, HTTP2-Settings"}},
			upgradeStripped, map[string][]string{}},
		{"h2c with keep-alive keeps keep-alive", "GET", 1,
			map[string][]string{"Upgrade": {"h2c"}, "Connection": {"keep-alive, Upgrade"}},
			upgradeStripped, map[string][]string{"Connection": {"keep-alive"}}},
		{"websocket and h2c stripped", "GET", 1,
			map[string][]string{"Upgrade": {"websocket, h2c"}, "Connection": {"Upgrade"}}, upgradeStripped, map[string][]string{}},
		{"two upgrade lines stripped", "GET", 1,
			map[string][]string{"Upgrade": {"websocket", "h2c"}, "Connection": {"Upgrade"}}, upgradeStripped, map[string][]string{}},
		{"non-canonical keys stripped", "GET", 1,
			map[string][]string{"upgrade": {"h2c"}, "HTTP2-SETTINGS": {"x"}, "connection": {"upgrade"}}, upgradeStripped, map[string][]string{}},
		{"settings alone stripped", "GET", 1, map[string][]string{"Http2-Settings": {"x"}}, upgradeStripped, map[string][]string{}},
		{"websocket with settings stripped", "GET", 1,
			map[string][]string{"Upgrade": {"websocket"}, "Http2-Settings": {"x"}, "Connection": {"Upgrade"}}, upgradeStripped, map[string][]string{}},
		{"websocket on POST stripped", "POST", 1, map[string][]string{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}, upgradeStripped, map[string][]string{}},
		{"other token stripped", "GET", 1, map[string][]string{"Upgrade": {"foo/1"}, "Connection": {"Upgrade"}}, upgradeStripped, map[string][]string{}},
		{"extended CONNECT websocket passes", "CONNECT", 2, map[string][]string{":protocol": {"websocket"}}, upgradeWebSocket, nil},
		{"extended CONNECT other refused", "CONNECT", 2, map[string][]string{":protocol": {"connect-udp"}}, tunnelRefused, nil},
		{"extended CONNECT in another case refused", "CONNECT", 2, map[string][]string{":protocol": {"WebSocket"}}, tunnelRefused, nil},
		{"HTTP/3 CONNECT without websocket refused", "CONNECT", 3, map[string][]string{}, tunnelRefused, nil},
		{"plain CONNECT refused", "CONNECT", 1, map[string][]string{}, tunnelRefused, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://gw.example/x", nil)
			r.ProtoMajor = tc.proto
			r.Header = http.Header{}
			for k, v := range tc.header {
				r.Header[k] = append([]string(nil), v...)
			}
			if got := filterUpgrade(r); got != tc.want {
				t.Fatalf("verdict %v, want %v", got, tc.want)
			}
			want := tc.wantHeader
			if want == nil {
				want = tc.header
			}
			if fmt.Sprint(map[string][]string(r.Header)) != fmt.Sprint(want) {
				t.Fatalf("header after: %v, want %v", r.Header, want)
			}
		})
	}
}

func TestPathRules(t *testing.T) {
	none := pathRules{}
	jsession := pathRules{params: []string{"jsessionid"}}
	tests := []struct {
		rules pathRules
		path  string // the decoded path, as r.URL.Path holds it
		want  pathRefusal
	}{
		{none, "/", pathOK},
		{none, "/j/admin/secret", pathOK},
		{none, "/files/report.pdf", pathOK},
		{none, "/.well-known/x", pathOK},
		{none, "/a/b/", pathOK},
		{none, "/50% off", pathOK},
		{none, "/j/admin;x/secret", pathParameter},
		{none, "/j;x/admin/secret", pathParameter},
		{none, "/page;jsessionid=1", pathParameter},
		{none, "/a%3bb", pathParameter}, // double-encoded ";"
		{none, "/a%253bb", pathParameter},
		{none, "/a\\b", pathBackslash},
		{none, "/a%5cb", pathBackslash},
		{none, "/a\x00b", pathControl},
		{none, "/a\nb", pathControl},
		{none, "/a\tb", pathControl},
		{none, "/a\x7fb", pathControl},
		{none, "/a%00b", pathControl},
		{none, "/admin./secret", pathTrailingDotSp},
		{none, "/admin /secret", pathTrailingDotSp},
		{none, "/admin.", pathTrailingDotSp},
		{none, "/./x", pathTrailingDotSp},
		{none, "/../x", pathTrailingDotSp},
		{none, "/x/..", pathTrailingDotSp},
		{none, "/admin%2e/secret", pathTrailingDotSp},
		// An invalid escape does not stop the decoding of the others.
		{none, "/admin%3bx/secret%zz", pathParameter},
		{none, "/a/%5c/b%zz", pathBackslash},
		{none, "/a%00b%zz", pathControl},
		{none, "/a/..%2f%zz", pathTrailingDotSp},
		{none, "/100%/x%zz", pathOK},
		{jsession, "/j/app/page;jsessionid=ABC", pathOK},
		{jsession, "/j/app/page;JSESSIONID=ABC", pathOK},
		{jsession, "/j/app/page;jsessionid", pathOK},
		{jsession, "/j/app;jsessionid=ABC/page", pathParameter},
		{jsession, "/j/app/page;x=1", pathParameter},
		{jsession, "/j/app/page;jsessionid=1;x=2", pathParameter},
		{jsession, "/j/app/page;", pathParameter},
		{jsession, "/j/app/;jsessionid=1/", pathParameter},
		{jsession, "/j/app/page.;jsessionid=1", pathTrailingDotSp},
	}
	for _, tc := range tests {
		if got := tc.rules.check(tc.path); got != tc.want {
			t.Errorf("%v check(%q) = %q, want %q", tc.rules.params, tc.path, got, tc.want)
		}
	}
}

// rawRequest sends request bytes as they are on a new connection to srv
// and returns the status line's code.
func rawRequest(t *testing.T, srv *httptest.Server, request string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", request, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestRefusedPathsThroughTheGate(t *testing.T) {
	f := newFixture(t)
	ids := f.identities(threeRoles())
	up := &upstream{}
	srv := serve(t, f.gate(ids, GateConfig{}), up)
	servlet := serve(t, f.gate(ids, GateConfig{AllowPathParams: []string{"jsessionid"}}), up)
	public := serve(t, f.gate(ids, GateConfig{Policy: Policy{Public: true}}), up)
	cookie := f.signIn(f.user("viewer1"))

	for _, tc := range []struct {
		srv    *httptest.Server
		target string // the request target, as sent
		want   int
	}{
		{srv, "/j/viewer/page", http.StatusOK}, // control
		{srv, "/j/admin;x/secret", http.StatusBadRequest},
		{srv, "/j/admin%3bx/secret", http.StatusBadRequest},
		{srv, "/j/admin%3Bx/secret", http.StatusBadRequest},
		{srv, "/a\\b", http.StatusBadRequest},
		{srv, "/a%5Cb", http.StatusBadRequest},
		{srv, "/a%00b", http.StatusBadRequest},
		{srv, "/a%0d%0ab", http.StatusBadRequest},
		{srv, "/admin./secret", http.StatusBadRequest},
		{srv, "/admin%2E/secret", http.StatusBadRequest},
		{srv, "/admin%20/secret", http.StatusBadRequest},
		{srv, "/../etc/passwd", http.StatusBadRequest},
		{srv, "/x%2F..%2Fadmin", http.StatusBadRequest},
		{public, "/j/admin;x/secret", http.StatusBadRequest},
		{public, "/open/page", http.StatusOK}, // control
		{servlet, "/j/app/page;jsessionid=ABC", http.StatusOK},
		{servlet, "/j/app;jsessionid=ABC/page", http.StatusBadRequest},
		{servlet, "/j/app/page;x", http.StatusBadRequest},
	} {
		_, before := up.received()
		req := "GET " + tc.target + " HTTP/1.1\r\nHost: gw.example\r\nCookie: " + testCookie + "=" + cookie + "\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
		if got := rawRequest(t, tc.srv, req); got != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.target, got, tc.want)
		}
		_, after := up.received()
		if reached := after != before; reached != (tc.want == http.StatusOK) {
			t.Errorf("GET %s: reached the upstream: %v", tc.target, reached)
		}
	}

	// Each refusal is audited, but one client costs one event a minute.
	evs := f.events(storage.EventAccessDenied)
	if len(evs) != 1 {
		t.Fatalf("%d access.denied events for one client's refusals, want 1: %+v", len(evs), evs)
	}
	if !strings.Contains(evs[0].Reason, "path parameter") || !strings.HasPrefix(evs[0].Actor, "anonymous@127.0.0.1") {
		t.Errorf("event %+v does not name the reason and client", evs[0])
	}
	f.clock.Advance(time.Minute)
	rawRequest(t, srv, "GET /a;b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	evs = f.events(storage.EventAccessDenied)
	if len(evs) != 2 || !strings.Contains(evs[0].Reason, "more refused from this address") {
		t.Fatalf("after a minute: %+v, want a second event counting the skipped ones", evs)
	}
}

func TestGatewayCookiesNeverReachTheUpstream(t *testing.T) {
	f := newFixture(t)
	ids := f.identities(threeRoles())
	up := &upstream{}
	protected := serve(t, f.gate(ids, GateConfig{}), up)
	public := serve(t, f.gate(ids, GateConfig{Policy: Policy{Public: true}}), up)
	cookie := f.signIn(f.user("viewer1"))
	flow := testCookie + "_flow_0a1b2c3d4e5f=x"

	for _, tc := range []struct {
		name   string
		srv    *httptest.Server
		cookie []string
		want   []string // the Cookie header the upstream gets; nil: none
	}{
		{"protected, signed in", protected, []string{"app=1; " + testCookie + "=" + cookie + "; theme=dark"}, []string{"app=1; theme=dark"}},
		{"public, signed in", public, []string{testCookie + "=" + cookie + "; app=1"}, []string{"app=1"}},
		{"public, stale cookie and flow cookie", public, []string{testCookie + "=deadbeef; " + flow}, nil},
		{"public, several lines", public, []string{"app=1", flow, "theme=dark"}, []string{"app=1", "theme=dark"}},
		{"only the app's cookies: unchanged", public, []string{"app=1;theme=dark"}, []string{"app=1;theme=dark"}},
		{"similar names are the app's", public, []string{"x" + testCookie + "=1; " + testCookie + "x=2"}, []string{"x" + testCookie + "=1; " + testCookie + "x=2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []reqOpt
			for _, c := range tc.cookie {
				opts = append(opts, rawHeader("Cookie", c))
			}
			res := get(t, tc.srv, "/page", opts...)
			if res.status != http.StatusOK {
				t.Fatalf("status %d: %s", res.status, res.body)
			}
			got, _ := up.received()
			if fmt.Sprint(got.Values("Cookie")) != fmt.Sprint(tc.want) {
				t.Fatalf("upstream got Cookie %q, want %q", got.Values("Cookie"), tc.want)
			}
			if tc.name == "protected, signed in" && got.Get("X-Remote-User") != "viewer1" {
				t.Fatalf("the session was not used: %v", got)
			}
		})
	}
}

func TestPlaceholdersAreHeaderSafe(t *testing.T) {
	f := newFixture(t)
	ids := f.identities(threeRoles())
	up := &upstream{}
	srv := serve(t, f.gate(ids, GateConfig{}), up)
	u := &storage.User{
		ID: storage.NewID(), UserName: " evil\r\nX-Injected: 1 ", DisplayName: "Name\x00With\x7fControls",
		Emails: []string{"a\nb@example.com"}, Active: true, Source: storage.SourceSCIM,
	}
	f.update(func(tx storage.Tx) error { return tx.PutUser(u) })
	cookie := f.signIn(u)
	res := get(t, srv, "/", withCookie(cookie))
	if res.status != http.StatusOK {
		t.Fatalf("status %d", res.status)
	}
	hdr, _ := up.received()
	e, out, err := ids.resolve(func() *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: testCookie, Value: cookie})
		return r
	}())
	if err != nil || out != identified {
		t.Fatalf("resolve: %v %v", out, err)
	}
	byName := map[string]string{}
	for _, p := range e.identity.Placeholders() {
		v := p.Value.(string)
		for i := 0; i < len(v); i++ {
			if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
				t.Errorf("placeholder %s = %q holds a control character", p.Name, v)
			}
		}
		byName[p.Name] = v
	}
	for name, header := range map[string]string{
		PlaceholderAuthUserID: "X-Remote-User", PlaceholderUserName: "X-Remote-User",
		PlaceholderDisplayName: "X-Remote-Name", PlaceholderEmail: "X-Remote-Email",
	} {
		if byName[name] != hdr.Get(header) {
			t.Errorf("{%s} = %q, %s = %q: want the same encoding", name, byName[name], header, hdr.Get(header))
		}
	}
	if byName[PlaceholderUserName] != "evil\uFFFD\uFFFDX-Injected: 1" {
		t.Errorf("{%s} = %q", PlaceholderUserName, byName[PlaceholderUserName])
	}
}

// TestRefusalRecordsBoundedAcrossAddresses: an attacker rotating through
// addresses (an IPv6 /48 holds 65,536 /64s) still costs the tenant at most
// auditBudgetPerWindow store writes a minute; the rest are counted into the
// next record (found by review).
func TestRefusalRecordsBoundedAcrossAddresses(t *testing.T) {
	f := newFixture(t)
	ids := f.identities(threeRoles())
	up := &upstream{}
	// The test's client address comes from a header, as Caddy's trusted
	// client IP would from X-Forwarded-For behind a proxy.
	srv := serve(t, f.gate(ids, GateConfig{ClientAddr: func(r *http.Request) string { return r.Header.Get("Test-Client") }}), up)
	const addresses = 200
	for i := 0; i < addresses; i++ {
		res := get(t, srv, "/j/admin;x/secret", rawHeader("Test-Client", fmt.Sprintf("2001:db8:%x::1", i)))
		if res.status != http.StatusBadRequest {
			t.Fatalf("status %d", res.status)
		}
	}
	if n := len(f.events(storage.EventAccessDenied)); n != auditBudgetPerWindow {
		t.Fatalf("%d records for %d addresses, want the budget of %d", n, addresses, auditBudgetPerWindow)
	}
	f.clock.Advance(time.Minute)
	get(t, srv, "/a;b", rawHeader("Test-Client", "192.0.2.1"))
	evs := f.events(storage.EventAccessDenied)
	want := fmt.Sprintf("and %d refused requests from other addresses not recorded", addresses-auditBudgetPerWindow)
	if len(evs) != auditBudgetPerWindow+1 || !strings.Contains(evs[0].Reason, want) {
		t.Fatalf("next window's record %q, want it to say %q", evs[0].Reason, want)
	}
}
