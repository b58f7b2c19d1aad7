package gatewaytest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Backend is the legacy app behind the gateway in a test: an HTTP server on
// 127.0.0.1 that answers every request with what it received, as JSON, so
// a test sees exactly the headers the gateway passed on.
type Backend struct {
	// Addr is host:port, for reverse_proxy.
	Addr   string
	server *httptest.Server
}

// Echo is a Backend's answer.
type Echo struct {
	Method string      `json:"method"`
	URI    string      `json:"uri"`
	Header http.Header `json:"header"`
	// Extra is what the test's inspect function returned for the request.
	Extra json.RawMessage `json:"extra,omitempty"`
}

// StartBackend runs a backend until the test ends. inspect, when not nil,
// runs on every request and its result (marshalled to JSON) is the answer's
// Extra: a test uses it to check a request the way a real app would, e.g.
// verify a signed assertion.
func StartBackend(t testing.TB, inspect func(r *http.Request) any) *Backend {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := Echo{Method: r.Method, URI: r.RequestURI, Header: r.Header}
		if inspect != nil {
			b, err := json.Marshal(inspect(r))
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			e.Extra = b
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(e)
	}))
	t.Cleanup(srv.Close)
	return &Backend{Addr: strings.TrimPrefix(srv.URL, "http://"), server: srv}
}

// ParseEcho decodes a Backend's answer from a page body, failing the test
// when the page is not one (the gateway answered itself).
func ParseEcho(t testing.TB, body string) Echo {
	t.Helper()
	var e Echo
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Method == "" {
		t.Fatalf("expected the backend's echo, got:\n%s", body)
	}
	return e
}
