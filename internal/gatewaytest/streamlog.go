package gatewaytest

import (
	"sync"
	"time"
)

// PushInterval is how often the WebSocket and SSE backends push a message,
// so a test sees within a few intervals whether a stream still relays.
const PushInterval = 100 * time.Millisecond

// StreamLog is what a streaming backend (WebSocket, SSE) knows of its
// connections, by the name the client gave in the query (?name=...), so a
// test can tell whether the gateway closed the backend's side too and how
// much the backend pushed after a given moment.
type StreamLog struct {
	mu    sync.Mutex
	conns map[string]*StreamConn
}

// StreamConn is one stream as the backend saw it.
type StreamConn struct {
	Name    string
	User    string // X-Remote-User the gateway sent when the stream opened
	Started time.Time

	mu       sync.Mutex
	pushes   []time.Time // when each push was written (successfully)
	ended    time.Time
	endedSet bool
}

func newStreamLog() *StreamLog { return &StreamLog{conns: map[string]*StreamConn{}} }

// open records a new stream; a name used again replaces the older record.
func (l *StreamLog) open(name, user string) *StreamConn {
	c := &StreamConn{Name: name, User: user, Started: time.Now()}
	l.mu.Lock()
	l.conns[name] = c
	l.mu.Unlock()
	return c
}

// Conn returns the stream opened with name, or nil.
func (l *StreamLog) Conn(name string) *StreamConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[name]
}

func (c *StreamConn) pushed(at time.Time) {
	c.mu.Lock()
	c.pushes = append(c.pushes, at)
	c.mu.Unlock()
}

func (c *StreamConn) end() {
	c.mu.Lock()
	if !c.endedSet {
		c.ended, c.endedSet = time.Now(), true
	}
	c.mu.Unlock()
}

// Pushes is how many messages the backend has written to the stream.
func (c *StreamConn) Pushes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pushes)
}

// PushesAfter is how many messages the backend wrote after t.
func (c *StreamConn) PushesAfter(t time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, p := range c.pushes {
		if p.After(t) {
			n++
		}
	}
	return n
}

// Ended is when the backend saw the stream end (a write failed or the
// request was cancelled), and whether it has.
func (c *StreamConn) Ended() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended, c.endedSet
}
