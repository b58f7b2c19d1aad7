package gatewaytest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// WebSocketBackend is an app with a WebSocket endpoint behind the gateway:
// on every path it accepts a WebSocket, echoes each text message back as
// "echo:<message>", and on its own pushes "push <n> <unix nanos>" every
// PushInterval, so a test sees whether the gateway still relays. A stream
// is named by the ?name= of its URL in Log. It uses github.com/coder/websocket
// (context-aware reads and writes, no dependencies, maintained by Coder as
// the successor of nhooyr.io/websocket).
type WebSocketBackend struct {
	// Addr is host:port, for reverse_proxy.
	Addr string
	Log  *StreamLog
}

// StartWebSocketBackend runs the backend until the test ends.
func StartWebSocketBackend(t testing.TB) *WebSocketBackend {
	t.Helper()
	b := &WebSocketBackend{Log: newStreamLog()}
	// Hijacked connections outlive httptest's Close: done ends them.
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return // Accept has answered
		}
		sc := b.Log.open(r.URL.Query().Get("name"), r.Header.Get("X-Remote-User"))
		defer sc.end()
		defer conn.CloseNow()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			defer cancel()
			for {
				typ, msg, err := conn.Read(ctx)
				if err != nil {
					return
				}
				if typ == websocket.MessageText {
					if err := conn.Write(ctx, websocket.MessageText, []byte("echo:"+string(msg))); err != nil {
						return
					}
				}
			}
		}()
		tick := time.NewTicker(PushInterval)
		defer tick.Stop()
		for n := 1; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-tick.C:
			}
			now := time.Now()
			wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
			err := conn.Write(wctx, websocket.MessageText, fmt.Appendf(nil, "push %d %d", n, now.UnixNano()))
			wcancel()
			if err != nil {
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
