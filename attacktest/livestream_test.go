package attacktest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// liveStream is a client's end of a WebSocket or SSE stream through the
// gateway: a goroutine reads it and keeps every push the backend sent
// ("push <n> <unix nanos>"), until the stream ends.
type liveStream struct {
	kind, url string

	mu     sync.Mutex
	pushes []push
	echoes []string
	ended  time.Time
	err    error
	done   chan struct{}

	ws     *websocket.Conn    // WebSocket only
	cancel context.CancelFunc // ends the read
}

// push is one message of the backend as the client got it.
type push struct {
	n    int
	sent time.Time // by the backend's clock (the same machine)
	got  time.Time
}

// cookieHeader is the Cookie header of a session ("" for none).
func cookieHeader(session string) http.Header {
	h := http.Header{}
	if session != "" {
		h.Set("Cookie", sessionCookie+"="+session)
	}
	return h
}

// openWS opens a WebSocket to u (http://...) with the session cookie.
func openWS(t *testing.T, u, session string) *liveStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(u, "http"), &websocket.DialOptions{HTTPHeader: cookieHeader(session)})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("opening a WebSocket to %s: %v (status %d)", u, err, status)
	}
	s := &liveStream{kind: "WebSocket", url: u, done: make(chan struct{}), ws: conn}
	readCtx, readCancel := context.WithCancel(context.Background())
	s.cancel = readCancel
	go func() {
		for {
			_, msg, err := conn.Read(readCtx)
			if err != nil {
				s.finish(err)
				return
			}
			s.received(string(msg))
		}
	}()
	t.Cleanup(s.close)
	return s
}

// openSSE opens an event stream of u with the session cookie.
func openSSE(t *testing.T, u, session string) *liveStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	req.Header = cookieHeader(session)
	req.Header.Set("Accept", "text/event-stream")
	// No client timeout: the stream is meant to last; cancel ends it.
	resp, err := (&http.Client{CheckRedirect: client.CheckRedirect}).Do(req)
	if err != nil {
		cancel()
		t.Fatalf("opening an event stream of %s: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		cancel()
		t.Fatalf("opening an event stream of %s: %d %s", u, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &liveStream{kind: "SSE", url: u, done: make(chan struct{}), cancel: cancel}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				s.received(data)
			}
		}
		err := sc.Err()
		if err == nil {
			err = errors.New("end of stream")
		}
		s.finish(err)
	}()
	t.Cleanup(s.close)
	return s
}

func (s *liveStream) received(msg string) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := strings.CutPrefix(msg, "echo:"); ok {
		s.echoes = append(s.echoes, e)
		return
	}
	var n int
	var nanos int64
	if _, err := fmt.Sscanf(msg, "push %d %d", &n, &nanos); err == nil {
		s.pushes = append(s.pushes, push{n: n, sent: time.Unix(0, nanos), got: now})
	}
}

func (s *liveStream) finish(err error) {
	s.mu.Lock()
	s.ended, s.err = time.Now(), err
	s.mu.Unlock()
	close(s.done)
}

// close ends the client's side (test cleanup).
func (s *liveStream) close() {
	if s.ws != nil {
		_ = s.ws.CloseNow()
	}
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
	}
}

// count is how many pushes arrived so far.
func (s *liveStream) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pushes)
}

// sentAfter is how many pushes arrived that the backend sent after t.
func (s *liveStream) sentAfter(t time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.pushes {
		if p.sent.After(t) {
			n++
		}
	}
	return n
}

// endedAt is when the stream ended, if it has.
func (s *liveStream) endedAt() (time.Time, error, bool) {
	select {
	case <-s.done:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.ended, s.err, true
	default:
		return time.Time{}, nil, false
	}
}

// waitPushes waits until n more pushes than now have arrived, or timeout.
func (s *liveStream) waitPushes(n int, timeout time.Duration) error {
	want := s.count() + n
	deadline := time.Now().Add(timeout)
	for s.count() < want {
		if _, err, ended := s.endedAt(); ended {
			return fmt.Errorf("%s %s ended (%v) after %d pushes", s.kind, s.url, err, s.count())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s %s: %d pushes within %v, want %d more", s.kind, s.url, s.count(), timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// waitEnd waits until the stream ends or the deadline passes.
func (s *liveStream) waitEnd(deadline time.Time) (time.Time, bool) {
	select {
	case <-s.done:
		at, _, _ := s.endedAt()
		return at, true
	case <-time.After(time.Until(deadline)):
		return time.Time{}, false
	}
}

// echo sends text over a WebSocket and waits for the backend's echo.
func (s *liveStream) echo(text string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.ws.Write(ctx, websocket.MessageText, []byte(text)); err != nil {
		return fmt.Errorf("writing to the WebSocket: %v", err)
	}
	for ctx.Err() == nil {
		s.mu.Lock()
		for _, e := range s.echoes {
			if e == text {
				s.mu.Unlock()
				return nil
			}
		}
		s.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	return errors.New("no echo within 5s")
}
