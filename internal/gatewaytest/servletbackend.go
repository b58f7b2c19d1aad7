package gatewaytest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"
)

// ServletBackend is a Java-servlet-style app behind the gateway: like
// Jetty and Tomcat it routes on the path with every `;parameters` part of
// every segment removed (and, like Tomcat with ALLOW_BACKSLASH, with
// backslashes read as slashes), then percent-decoded and cleaned. So
// /j/admin;x/secret is served as /j/admin/secret although a proxy matching
// on the raw path sees something else. Every request is answered with a
// ServletEcho and recorded.
type ServletBackend struct {
	// Addr is host:port, for reverse_proxy.
	Addr string

	mu   sync.Mutex
	seen []ServletEcho
}

// ServletEcho is one request as the ServletBackend routed it.
type ServletEcho struct {
	// RawPath is the request target's path as it arrived.
	RawPath string `json:"raw_path"`
	// Routed is the path the app served.
	Routed string `json:"routed"`
	User   string `json:"user"` // X-Remote-User
	Role   string `json:"role"` // X-Remote-Role
}

// StartServletBackend runs the backend until the test ends.
func StartServletBackend(t testing.TB) *ServletBackend {
	t.Helper()
	b := &ServletBackend{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _, _ := strings.Cut(r.RequestURI, "?")
		e := ServletEcho{RawPath: raw, Routed: ServletRoute(raw), User: r.Header.Get("X-Remote-User"), Role: r.Header.Get("X-Remote-Role")}
		b.mu.Lock()
		b.seen = append(b.seen, e)
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(e)
	}))
	t.Cleanup(srv.Close)
	b.Addr = strings.TrimPrefix(srv.URL, "http://")
	return b
}

// ServletRoute is the path a servlet container routes for the raw request
// path: `;params` cut from each segment, decoded, backslashes (raw or
// decoded) as slashes, cleaned.
func ServletRoute(raw string) string {
	segs := strings.Split(strings.ReplaceAll(raw, `\`, "/"), "/")
	for i, s := range segs {
		segs[i], _, _ = strings.Cut(s, ";")
	}
	p := strings.Join(segs, "/")
	if dec, err := url.PathUnescape(p); err == nil {
		p = dec
	}
	return path.Clean("/" + strings.ReplaceAll(p, `\`, "/"))
}

// Take returns the requests received since the last Take.
func (b *ServletBackend) Take() []ServletEcho {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.seen
	b.seen = nil
	return s
}
