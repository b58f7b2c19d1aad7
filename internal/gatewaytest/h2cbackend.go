package gatewaytest

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// H2CBackend is an app server that, like hypercorn, switches to cleartext
// HTTP/2 on `Upgrade: h2c` alone: it answers such a request with 101 and
// then speaks HTTP/2 on the connection (HTTP2-Settings is used when sent
// but not required, and Connection need not name it, as RFC 9113 dropped
// the upgrade and servers stopped checking). golang.org/x/net's h2c
// handler insists on `Connection: HTTP2-Settings`, which a proxy strips, so
// the upgrade is done here by hand and the connection handed to
// http2.Server.ServeConn with the upgrade request as stream 1.
//
// Every request, HTTP/1.1 or HTTP/2, is answered with an H2CEcho of what
// arrived and recorded, so a test sees whether forged identity headers sent
// over a tunnel reached the app.
type H2CBackend struct {
	// Addr is host:port, for reverse_proxy.
	Addr string

	mu   sync.Mutex
	seen []H2CEcho
}

// H2CEcho is one request as the H2CBackend received it, and its answer.
type H2CEcho struct {
	Proto  string      `json:"proto"` // "HTTP/1.1" or "HTTP/2.0"
	Method string      `json:"method"`
	URI    string      `json:"uri"`
	Header http.Header `json:"header"`
}

// StartH2CBackend runs the backend until the test ends.
func StartH2CBackend(t testing.TB) *H2CBackend {
	t.Helper()
	b := &H2CBackend{}
	h2 := &http2.Server{}
	var (
		connsMu sync.Mutex
		conns   = map[net.Conn]bool{}
		wg      sync.WaitGroup
	)
	var echo http.HandlerFunc = func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		e := H2CEcho{Proto: r.Proto, Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone()}
		b.mu.Lock()
		b.seen = append(b.seen, e)
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(e)
	}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 1 || !httpguts.HeaderValuesContainsToken(r.Header["Upgrade"], "h2c") {
			echo(w, r)
			return
		}
		var settings []byte
		if v := r.Header.Get("HTTP2-Settings"); v != "" {
			settings, _ = base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
		if rw.Flush() != nil {
			conn.Close()
			return
		}
		c := &bufferedConn{Conn: conn, r: rw.Reader}
		connsMu.Lock()
		conns[c] = true
		connsMu.Unlock()
		wg.Add(1)
		defer func() {
			c.Close()
			connsMu.Lock()
			delete(conns, c)
			connsMu.Unlock()
			wg.Done()
		}()
		h2.ServeConn(c, &http2.ServeConnOpts{
			Context:        r.Context(),
			BaseConfig:     srv.Config,
			Handler:        echo,
			UpgradeRequest: r,
			Settings:       settings,
		})
	}))
	t.Cleanup(func() {
		connsMu.Lock()
		for c := range conns {
			c.Close()
		}
		connsMu.Unlock()
		srv.Close()
		wg.Wait()
	})
	b.Addr = strings.TrimPrefix(srv.URL, "http://")
	return b
}

// Seen returns every request received so far.
func (b *H2CBackend) Seen() []H2CEcho {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]H2CEcho(nil), b.seen...)
}

// Take returns the requests received since the last Take.
func (b *H2CBackend) Take() []H2CEcho {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.seen
	b.seen = nil
	return s
}

// bufferedConn reads what the HTTP/1 server had already buffered (the
// client may send its preface right behind the upgrade request) before the
// connection itself.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
