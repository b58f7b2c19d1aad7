package authz

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"time"
)

// liveWriter is the ResponseWriter a tracked request's handler gets. It
// catches the hijack of an upgraded connection, so the registry can close
// the connection when the session loses access, and passes everything
// else through (Unwrap lets http.ResponseController reach flushing and
// deadlines of the writer below).
type liveWriter struct {
	http.ResponseWriter
	lr *liveRequest
}

// Unwrap gives http.ResponseController the writer below.
func (w *liveWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes a flush on; streaming proxies (server-sent events) call it.
func (w *liveWriter) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands over the connection and records it for the registry.
func (w *liveWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.lr.isRevoked() {
		return nil, nil, errRequestRevoked
	}
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if !w.lr.hijacked(conn) {
		_ = conn.Close()
		return nil, nil, errRequestRevoked
	}
	return conn, brw, nil
}

// ReadFrom keeps the writer below's fast path (sendfile for file_server)
// when it has one.
func (w *liveWriter) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, r)
}

// writerOnly hides every method but Write, so io.Copy cannot loop back
// into ReadFrom.
type writerOnly struct{ io.Writer }

// hasDeadlines says whether w, or a writer it wraps (the chain
// http.ResponseController follows), sets read and write deadlines: the
// writers of net/http's HTTP/1 and HTTP/2 servers do. It only looks, so
// it leaves the deadlines the server set (ReadTimeout, WriteTimeout) alone.
func hasDeadlines(w http.ResponseWriter) bool {
	type deadliner interface {
		SetReadDeadline(time.Time) error
		SetWriteDeadline(time.Time) error
	}
	type unwrapper interface{ Unwrap() http.ResponseWriter }
	for range 16 { // bounds a writer chain that loops
		if _, ok := w.(deadliner); ok {
			return true
		}
		u, ok := w.(unwrapper)
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
	return false
}
