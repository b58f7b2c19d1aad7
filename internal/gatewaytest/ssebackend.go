package gatewaytest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// SSEBackend is an app streaming server-sent events behind the gateway: on
// every path it answers text/event-stream and sends an event
// "data: push <n> <unix nanos>" every PushInterval until the request ends.
// A stream is named by the ?name= of its URL in Log.
type SSEBackend struct {
	// Addr is host:port, for reverse_proxy.
	Addr string
	Log  *StreamLog
}

// StartSSEBackend runs the backend until the test ends.
func StartSSEBackend(t testing.TB) *SSEBackend {
	t.Helper()
	b := &SSEBackend{Log: newStreamLog()}
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := b.Log.open(r.URL.Query().Get("name"), r.Header.Get("X-Remote-User"))
		defer sc.end()
		rc := http.NewResponseController(w)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		if rc.Flush() != nil {
			return
		}
		tick := time.NewTicker(PushInterval)
		defer tick.Stop()
		for n := 1; ; n++ {
			select {
			case <-r.Context().Done():
				return
			case <-done:
				return
			case <-tick.C:
			}
			now := time.Now()
			_ = rc.SetWriteDeadline(now.Add(5 * time.Second))
			if _, err := fmt.Fprintf(w, "id: %d\ndata: push %d %d\n\n", n, n, now.UnixNano()); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
			sc.pushed(now)
		}
	}))
	t.Cleanup(func() {
		close(done)
		srv.Close()
	})
	b.Addr = strings.TrimPrefix(srv.URL, "http://")
	return b
}
