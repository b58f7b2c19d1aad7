package sso

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// flowService is a Service with a flow key and nothing else, for the
// sealing tests.
func flowService(t *testing.T, tenant string) *Service {
	t.Helper()
	g := newGateway(t)
	s := &Service{cfg: TenantConfig{Tenant: tenant, Session: SessionConfig{CookieName: DefaultCookieName}},
		store: g.store, log: zap.NewNop(), now: time.Now, usedFlows: newUsedFlows(10)}
	var err error
	if s.flowAEAD, err = loadOrCreateFlowKey(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFlowSealing(t *testing.T) {
	s := flowService(t, "acme")
	other := flowService(t, "globex")
	f := &loginFlow{Protocol: protocolOIDC, ReturnPath: "/x", Nonce: "n", Verifier: "v"}
	start := func(s *Service) (string, *http.Cookie) {
		w := httptest.NewRecorder()
		id, err := s.startFlow(w, httptest.NewRequest(http.MethodGet, "/sso/login", nil), "/sso", f, false)
		if err != nil {
			t.Fatal(err)
		}
		return id, w.Result().Cookies()[0]
	}
	consume := func(s *Service, id string, c *http.Cookie) error {
		r := httptest.NewRequest(http.MethodGet, "/sso/oidc/callback", nil)
		r.AddCookie(c)
		_, err := s.consumeFlow(httptest.NewRecorder(), r, "/sso", id)
		return err
	}
	id, c := start(s)
	id2, c2 := start(s)
	tampered := *c
	tampered.Value = c.Value[:len(c.Value)-2] + "AA"
	swapped := *c2
	swapped.Name = c.Name // the other flow's seal under this flow's name
	for _, tc := range []struct {
		name string
		s    *Service
		id   string
		c    *http.Cookie
		want error
	}{
		{"malformed state", s, "not-hex", c, errFlowMalformed},
		{"tampered", s, id, &tampered, errFlowMismatch},
		{"another flow's seal", s, id, &swapped, errFlowMismatch},
		{"another tenant's key", other, id, c, errFlowMismatch},
		{"good", s, id, c, nil},
		{"used twice", s, id, c, errFlowUnknown},
		{"the other flow", s, id2, c2, nil},
	} {
		if err := consume(tc.s, tc.id, tc.c); err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// Expired.
	id, c = start(s)
	s.now = func() time.Time { return time.Now().Add(flowTTL) }
	if err := consume(s, id, c); err != errFlowUnknown {
		t.Errorf("expired: %v", err)
	}
	// The key is kept: a restart (a new Service on the same store) opens
	// the flows of the last.
	s.now = time.Now
	id, c = start(s)
	again := &Service{cfg: s.cfg, store: s.store, log: zap.NewNop(), now: time.Now, usedFlows: newUsedFlows(10)}
	var err error
	if again.flowAEAD, err = loadOrCreateFlowKey(t.Context(), again); err != nil {
		t.Fatal(err)
	}
	if err := consume(again, id, c); err != nil {
		t.Errorf("after a restart: %v", err)
	}
}

func TestUsedFlows(t *testing.T) {
	u := newUsedFlows(3)
	t0 := time.Now()
	exp := t0.Add(flowTTL)
	if !u.consume("a", exp, t0) || u.consume("a", exp, t0) {
		t.Fatal("a flow id must be consumed once")
	}
	if !u.consume("b", exp.Add(time.Second), t0) || !u.consume("c", exp.Add(2*time.Second), t0) {
		t.Fatal("fresh ids refused")
	}
	// Full: the oldest is forgotten to make room.
	if !u.consume("d", exp.Add(3*time.Second), t0) || u.size() != 3 {
		t.Fatalf("size %d", u.size())
	}
	if !u.consume("a", exp, t0) {
		t.Fatal("the evicted id is still held")
	}
	// Expired ids go.
	if u.consume("d", exp, exp.Add(4*time.Second)) != true || u.size() != 1 {
		t.Fatalf("after expiry: size %d", u.size())
	}
	// The queue's front is reclaimed.
	big := newUsedFlows(10)
	for i := 0; i < 5000; i++ {
		big.consume(newRandom(), t0.Add(time.Minute), t0)
	}
	if len(big.order)-big.head != 10 || len(big.order) > 2100 {
		t.Fatalf("queue: %d entries, head %d", len(big.order), big.head)
	}
}

// TestFlowCookieSize: a flow with the longest return path fits a cookie;
// one whose return path escapes to too much comes back to "/" instead of
// being dropped by the browser.
func TestFlowCookieSize(t *testing.T) {
	s := flowService(t, "acme")
	long := "/?" + strings.Repeat("a&b<c>", (maxReturnPathLen-2)/6)
	quoted := "/?" + strings.Repeat(`"`, maxReturnPathLen-2)
	for _, tc := range []struct{ path, want string }{
		{long, long},
		{quoted, "/"},
	} {
		if SanitizeReturnPath(tc.path) != tc.path {
			t.Fatalf("test path %.20q is not a return path", tc.path)
		}
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "https://gw.example/sso/login", nil)
		f := &loginFlow{Protocol: protocolSAML, ReturnPath: tc.path, RequestID: "id-" + newRandom(), ACSURL: "https://gw.example/sso/saml/acs"}
		id, err := s.startFlow(w, r, "/sso", f, true)
		if err != nil {
			t.Fatal(err)
		}
		c := w.Result().Cookies()[0]
		if n := len(c.Name) + len(c.Value); n > 4000 {
			t.Errorf("%.20q: cookie of %d bytes", tc.path, n)
		}
		r = httptest.NewRequest(http.MethodPost, "https://gw.example/sso/saml/acs", nil)
		r.AddCookie(c)
		got, err := s.consumeFlow(httptest.NewRecorder(), r, "/sso", id)
		if err != nil || got.ReturnPath != tc.want {
			t.Errorf("%.20q: came back as %v, %v", tc.path, got, err)
		}
	}
}
